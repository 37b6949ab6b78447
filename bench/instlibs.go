package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidislock"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// The libraries of the instances suite, as one service instance uses them:
// one client per process, a blocking acquire that waits as long as the
// caller's context allows, and a single attempt.
const (
	rl  = "redislock"
	rue = "rueidislock"
)

// manyTries is WithTries for quorumlock and redsync: a healthy run never
// runs out of attempts; the run's end (the context's deadline) stops a wait.
const manyTries = 1_000_000

// redislock's retry strategy: its ExponentialBackoff with the minimum its
// documentation recommends (16 ms) and a 256 ms cap (redsync's and
// quorumlock's retry delays top out at 250 ms). The strategy has state (an
// attempt counter), so every Obtain gets a new one.
const (
	redislockMin = 16 * time.Millisecond
	redislockMax = 256 * time.Millisecond
	redislockTTL = 10 * time.Second // quorumlock's default TTL
)

type waitLocker interface {
	name() string
	// lock blocks until key is held or ctx ends; it returns the release.
	lock(ctx context.Context, key string) (unlock func() error, err error)
	// tryLock makes one attempt.
	tryLock(ctx context.Context, key string) (unlock func() error, err error)
	close()
}

// newWaitLocker builds lib's client on addrs (redislock and rueidislock take
// one node only).
func newWaitLocker(lib string, addrs []string) (waitLocker, error) {
	switch lib {
	case q:
		return newQuorumlockWait(addrs)
	case rs:
		return &rsyncWait{newRedsync(addrs)}, nil
	case rl:
		if len(addrs) != 1 {
			return nil, fmt.Errorf("%s: one node only, got %d", rl, len(addrs))
		}
		return newRedislock(addrs[0]), nil
	case rue:
		if len(addrs) != 1 {
			return nil, fmt.Errorf("%s: one node only, got %d", rue, len(addrs))
		}
		return newRueidislock(addrs[0])
	}
	return nil, fmt.Errorf("unknown library %q", lib)
}

// quorumlock: default options but the pools' timeouts (as in libs.go) and
// WithTries.
type qlockWait struct{ *qlock }

func newQuorumlockWait(addrs []string) (*qlockWait, error) {
	q := &qlock{}
	for _, a := range addrs {
		q.pools = append(q.pools, pool.New(a, pool.WithDialTimeout(timeout), pool.WithReadTimeout(timeout), pool.WithWriteTimeout(timeout)))
	}
	c, err := redlock.New(q.pools, redlock.WithTries(manyTries))
	if err != nil {
		for _, p := range q.pools {
			p.Close()
		}
		return nil, err
	}
	q.client = c
	return &qlockWait{q}, nil
}

func (q *qlockWait) lock(ctx context.Context, key string) (func() error, error) {
	return q.qlock.lock(ctx, key, true)
}

func (q *qlockWait) tryLock(ctx context.Context, key string) (func() error, error) {
	return q.qlock.lock(ctx, key, false)
}

// redsync v4 (redigo pools as in libs.go), default options but WithTries.
type rsyncWait struct{ *rsync }

func (r *rsyncWait) lock(ctx context.Context, key string) (func() error, error) {
	return r.mutex(ctx, r.rs.NewMutex(key, redsync.WithTries(manyTries)), false)
}

func (r *rsyncWait) tryLock(ctx context.Context, key string) (func() error, error) {
	return r.mutex(ctx, r.rs.NewMutex(key), true)
}

func (r *rsyncWait) mutex(ctx context.Context, m *redsync.Mutex, once bool) (func() error, error) {
	var err error
	if once {
		err = m.TryLockContext(ctx)
	} else {
		err = m.LockContext(ctx)
	}
	if err != nil {
		return nil, err
	}
	return redsyncUnlock(m), nil
}

// bsm/redislock on a go-redis v9 client with the same dial, read and write
// timeouts as the redigo pools.
type redislockWait struct {
	rc *goredis.Client
	c  *redislock.Client
}

func newRedislock(addr string) *redislockWait {
	rc := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout})
	return &redislockWait{rc: rc, c: redislock.New(rc)}
}

func (r *redislockWait) name() string { return rl }

func (r *redislockWait) lock(ctx context.Context, key string) (func() error, error) {
	return r.obtain(ctx, key, &redislock.Options{RetryStrategy: redislock.ExponentialBackoff(redislockMin, redislockMax)})
}

func (r *redislockWait) tryLock(ctx context.Context, key string) (func() error, error) {
	return r.obtain(ctx, key, nil) // nil options: no retry
}

func (r *redislockWait) obtain(ctx context.Context, key string, opt *redislock.Options) (func() error, error) {
	l, err := r.c.Obtain(ctx, key, redislockTTL, opt)
	if err != nil {
		return nil, err
	}
	return func() error { return l.Release(context.Background()) }, nil
}

func (r *redislockWait) close() { r.rc.Close() }

// rueidislock with the settings its README gives for one Redis 7.0.5+
// instance (KeyMajority 1, NoLoopTracking), defaults otherwise (key validity
// 5 s, extended every 2.5 s); client-side caching wakes its waiters.
type rueWait struct{ l rueidislock.Locker }

func newRueidislock(addr string) (*rueWait, error) {
	l, err := rueidislock.NewLocker(rueidislock.LockerOption{
		ClientOption:   rueidis.ClientOption{InitAddress: []string{addr}, Dialer: net.Dialer{Timeout: timeout}},
		KeyMajority:    1,
		NoLoopTracking: true,
	})
	if err != nil {
		return nil, err
	}
	return &rueWait{l: l}, nil
}

func (r *rueWait) name() string { return rue }

func (r *rueWait) lock(ctx context.Context, key string) (func() error, error) {
	_, cancel, err := r.l.WithContext(ctx, key)
	if err != nil {
		return nil, err
	}
	return func() error { cancel(); return nil }, nil // cancel returns once the key is deleted
}

func (r *rueWait) tryLock(ctx context.Context, key string) (func() error, error) {
	_, cancel, err := r.l.TryWithContext(ctx, key)
	if err != nil {
		return nil, err
	}
	return func() error { cancel(); return nil }, nil
}

func (r *rueWait) close() { r.l.Close() }
