package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gomodule/redigo/redis"
)

// ring, the hand-over floor, is not a lock: it is the fastest a fair hand-over across the
// instances can be on this machine, measured beside the libraries in the
// same runs. The instances pass a token round a ring: a release PUBLISHes
// "next-instance seq" on every node, on the next instance's own channel
// (and returns once a quorum replied),
// and the next instance takes the token once a quorum of those messages
// reached it. One message hop per hand-over, no script, no claim, no
// exclusion under faults: whatever a lock adds to that is its own cost.
const ring = "hand-over floor"

// floorRing is one instance's end of the ring.
type floorRing struct {
	id, next int
	key      string
	q        int
	pubs     []redis.Conn
	subs     []redis.PubSubConn
	replies  chan error  // the PUBLISHes' replies, from every node
	owed     int         // replies not yet read
	token    chan uint64 // the seq of the token, once a quorum passed it here
	seq      uint64      // the token's seq while held
	done     chan struct{}
	wg       sync.WaitGroup
}

// newFloorRing connects instance cfg.ID of cfg.Instances to cfg.Addrs and
// subscribes to cfg.Key's channel before it returns (the worker says ready
// after it). Instance 0 holds the token first.
func newFloorRing(cfg workerConfig) (*floorRing, error) {
	if cfg.Instances < 1 || cfg.ID < 0 || cfg.ID >= cfg.Instances {
		return nil, fmt.Errorf("floor: instance %d of %d", cfg.ID, cfg.Instances)
	}
	f := &floorRing{id: cfg.ID, next: (cfg.ID + 1) % cfg.Instances, key: cfg.Key, q: len(cfg.Addrs)/2 + 1,
		replies: make(chan error, 4*len(cfg.Addrs)), token: make(chan uint64, 1), done: make(chan struct{})}
	if f.id == 0 {
		f.token <- 1
	}
	seen := make(chan uint64, 4*len(cfg.Addrs)) // a seq addressed here, once per node
	var readers sync.WaitGroup
	for _, a := range cfg.Addrs {
		pub, err := redis.Dial("tcp", a, redis.DialConnectTimeout(timeout))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("floor: %w", err)
		}
		f.pubs = append(f.pubs, pub)
		c, err := redis.Dial("tcp", a, redis.DialConnectTimeout(timeout))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("floor: %w", err)
		}
		sub := redis.PubSubConn{Conn: c}
		f.subs = append(f.subs, sub)
		if err := sub.Subscribe(ringChannel(cfg.Key, f.id)); err != nil {
			f.close()
			return nil, fmt.Errorf("floor: %w", err)
		}
		if _, ok := sub.Receive().(redis.Subscription); !ok {
			f.close()
			return nil, errors.New("floor: no subscription confirmed")
		}
		f.wg.Add(1)
		go func() { // the PUBLISH replies
			defer f.wg.Done()
			for {
				_, err := pub.Receive()
				select {
				case f.replies <- err:
				case <-f.done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
		readers.Add(1)
		go func() { // the token's messages
			defer readers.Done()
			for {
				switch m := sub.Receive().(type) {
				case redis.Message:
					to, s, ok := strings.Cut(string(m.Data), " ")
					if id, err := strconv.Atoi(to); ok && err == nil && id == f.id {
						if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
							seen <- seq
						}
					}
				case error:
					return
				}
			}
		}()
	}
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		readers.Wait()
		close(seen)
	}()
	go func() { // a quorum of one seq passes the token here
		defer f.wg.Done()
		counts := map[uint64]int{}
		for seq := range seen {
			if counts[seq]++; counts[seq] == f.q {
				delete(counts, seq)
				select {
				case f.token <- seq:
				case <-f.done:
				}
			}
		}
	}()
	return f, nil
}

// ringChannel is instance id's own channel: a hand-over wakes the next
// instance only (as quorumlock's per-client channels do, L10).
func ringChannel(key string, id int) string { return key + ":ring:" + strconv.Itoa(id) }

func (f *floorRing) name() string { return ring }

func (f *floorRing) lock(ctx context.Context, _ string) (func() error, error) {
	select {
	case f.seq = <-f.token:
		return f.unlock, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryLock is the warm-up's: the connections are made already.
func (f *floorRing) tryLock(context.Context, string) (func() error, error) {
	return func() error { return nil }, nil
}

// unlock passes the token to the next instance, and returns once a quorum
// of nodes replied, as a release does (the replies a previous unlock left
// are read first).
func (f *floorRing) unlock() error {
	msg := strconv.Itoa(f.next) + " " + strconv.FormatUint(f.seq+1, 10)
	for _, c := range f.pubs {
		if err := c.Send("PUBLISH", ringChannel(f.key, f.next), msg); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return err
		}
	}
	f.owed += len(f.pubs)
	for f.owed > len(f.pubs)-f.q {
		if err := <-f.replies; err != nil {
			return err
		}
		f.owed--
	}
	return nil
}

func (f *floorRing) close() {
	close(f.done)
	for _, c := range f.pubs {
		c.Close()
	}
	for _, s := range f.subs {
		s.Close()
	}
	f.wg.Wait()
}
