package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	redsyncredigo "github.com/go-redsync/redsync/v4/redis/redigo"
	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// timeout is the pools' dial, read and write timeout for every library:
// redsync has no per-node deadline of its own, so this is its node timeout.
const timeout = 100 * time.Millisecond

// locker is one library under test: take a lock on key, then release it.
type locker interface {
	name() string
	// lock takes key (waiting when wait is set) and returns its release.
	lock(ctx context.Context, key string, wait bool) (unlock func() error, err error)
	close()
}

func redigoPools(addrs []string) []*redis.Pool {
	var ps []*redis.Pool
	for _, a := range addrs {
		ps = append(ps, &redis.Pool{
			MaxIdle: 128, MaxActive: 0, IdleTimeout: time.Minute, Wait: true,
			Dial: func() (redis.Conn, error) {
				return redis.Dial("tcp", a, redis.DialConnectTimeout(timeout),
					redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
			},
		})
	}
	return ps
}

// quorumlock, default options but the pools' timeouts (same as redsync's).
type qlock struct {
	pools  []pool.Pool
	client *redlock.Client
}

func newQuorumlock(addrs []string) *qlock {
	q := &qlock{}
	for _, a := range addrs {
		q.pools = append(q.pools, pool.New(a, pool.WithDialTimeout(timeout), pool.WithReadTimeout(timeout), pool.WithWriteTimeout(timeout)))
	}
	c, err := redlock.New(q.pools)
	if err != nil {
		panic(err)
	}
	q.client = c
	return q
}

func (q *qlock) name() string { return "quorumlock" }

func (q *qlock) lock(ctx context.Context, key string, wait bool) (func() error, error) {
	var l *redlock.Lock
	var err error
	if wait {
		l, err = q.client.Lock(ctx, key)
	} else {
		l, err = q.client.TryLock(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	return func() error { return l.Unlock(context.Background()) }, nil
}

func (q *qlock) close() {
	q.client.Close()
	for _, p := range q.pools {
		p.Close()
	}
}

// redsync v4 with its redigo adapter and default options.
type rsync struct {
	pools []*redis.Pool
	rs    *redsync.Redsync
}

func newRedsync(addrs []string) *rsync {
	r := &rsync{pools: redigoPools(addrs)}
	var ps []redsyncredis.Pool
	for _, p := range r.pools {
		ps = append(ps, redsyncredigo.NewPool(p))
	}
	r.rs = redsync.New(ps...)
	return r
}

func (r *rsync) name() string { return "redsync" }

func (r *rsync) lock(ctx context.Context, key string, wait bool) (func() error, error) {
	var opts []redsync.Option
	if !wait {
		opts = append(opts, redsync.WithTries(1))
	}
	m := r.rs.NewMutex(key, opts...)
	if err := m.LockContext(ctx); err != nil {
		return nil, err
	}
	return redsyncUnlock(m), nil
}

// redsyncUnlock returns the release of a held redsync mutex.
func redsyncUnlock(m *redsync.Mutex) func() error {
	return func() error {
		ok, err := m.UnlockContext(context.Background())
		if err == nil && !ok {
			err = errors.New("redsync: unlock refused")
		}
		return err
	}
}

func (r *rsync) close() {
	for _, p := range r.pools {
		p.Close()
	}
}

// floor is the raw floor: SET NX PX to every node in parallel, then DEL to
// every node in parallel, one pooled redigo connection per request; no
// quorum logic, no scripts, no value check.
type floor struct {
	pools []*redis.Pool
}

func newFloor(addrs []string) *floor { return &floor{pools: redigoPools(addrs)} }

func (f *floor) name() string { return "raw floor" }

func (f *floor) all(cmd string, args ...any) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.pools))
	for i, p := range f.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.Get()
			defer c.Close()
			_, errs[i] = c.Do(cmd, args...)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *floor) lock(_ context.Context, key string, _ bool) (func() error, error) {
	if err := f.all("SET", key, "v", "NX", "PX", 10000); err != nil {
		return nil, err
	}
	return func() error { return f.all("DEL", key) }, nil
}

func (f *floor) close() {
	for _, p := range f.pools {
		p.Close()
	}
}
