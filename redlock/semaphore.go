package redlock

import (
	"context"
	"fmt"
	"strconv"
)

// MaxPermits is the most permits a Semaphore may have: every attempt reads
// each slot on each node, and a client with waiters listens on a channel
// per slot.
const MaxPermits = 1024

// Semaphore lets at most a fixed number of holders hold a name at once:
// its permits. A permit is a lock (a *Lock) on one of the semaphore's
// permits slot keys, taken with the lock's own rules on a quorum of the
// nodes (ALGORITHM.md S1-S6), so that never more than permits holders
// stand before their Until() at once (S1). Every client using a name must
// use the same number of permits: the bound is the largest in use. A
// Semaphore is safe for concurrent use.
type Semaphore struct {
	c       *Client
	name    string
	permits int
	keys    []any // the script's keys: line, fencing counter, the slots (S2)
	// chans are the channels on which the slots are handed to this
	// client's waiters (sem.lua pass, L10): made once here, not per wait.
	chans []string
}

// Semaphore returns the semaphore called name with permits permits on the
// client's nodes. It touches no node. It returns an error wrapping
// ErrInvalidOption, naming the bad value, when permits is below 1 or above
// MaxPermits, or name is empty or longer than MaxNameLen.
func (c *Client) Semaphore(name string, permits int) (*Semaphore, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if permits < 1 || permits > MaxPermits {
		return nil, fmt.Errorf("%w: permits %d: must be in [1, %d]", ErrInvalidOption, permits, MaxPermits)
	}
	s := &Semaphore{c: c, name: name, permits: permits}
	s.keys = append(s.keys, SemaphoreLineKey(name), SemaphoreCounterKey(name))
	for i := range permits {
		k := SemaphoreSlotKey(name, i)
		s.chans = append(s.chans, k+releasedSuffix+":"+c.chanID)
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Name returns the semaphore's name.
func (s *Semaphore) Name() string { return s.name }

// Permits returns how many holders the semaphore admits at once.
func (s *Semaphore) Permits() int { return s.permits }

// TryAcquire makes one attempt to take a permit: a free slot, granted by a
// quorum of the nodes (ALGORITHM.md S2). It returns the permit as a held
// *Lock, whose Unlock gives it back; its Until, Done, Err, Extend and
// Token work as a lock's, and the options WithTTL, WithAutoExtend,
// WithMaxHold and WithFencing apply. It returns an error wrapping
// ErrNotAcquired (a *QuorumError) when every permit is held, or reserved
// for a waiter, or as many waiters stand in line as there are free
// permits (it never takes a permit ahead of them, S4), and when too many
// nodes failed or ctx ended; an error wrapping ErrInvalidOption for a bad
// option.
func (s *Semaphore) TryAcquire(ctx context.Context, opts ...Option) (*Lock, error) {
	cfg, err := s.c.callConfig(s.name, opts)
	if err != nil {
		return nil, err
	}
	return (&acquisition{s: s, prefer: -1}).attempt(ctx, &cfg, nil)
}

// Acquire takes a permit, waiting as Client.Lock waits for a lock: up to
// WithTries attempts with WithRetryDelay pauses, or until ctx ends; once
// every permit is held it waits in the semaphore's line with the waiters of
// every client, and the permits are given to the waiters in the order they
// arrived (ALGORITHM.md S4, L1-L9). A permit given back by Unlock goes to
// the first waiter within about a round trip; one whose holder died comes
// back within its TTL plus a few node timeouts. The permit and the errors
// are TryAcquire's, counting the attempts.
func (s *Semaphore) Acquire(ctx context.Context, opts ...Option) (*Lock, error) {
	cfg, err := s.c.callConfig(s.name, opts)
	if err != nil {
		return nil, err
	}
	return s.c.acquire(ctx, s.name, &cfg, &acquisition{s: s, prefer: -1})
}

// SemaphoreSlotKey returns the Redis key of slot i of semaphore name:
// LockKey(name) + ":sem:" + i. Each slot is an ordinary lock key (S1). The
// semaphore's keys are apart from those of the lock called name: the two
// never share a key or a line.
func SemaphoreSlotKey(name string, i int) string {
	return LockKey(name) + ":sem:" + strconv.Itoa(i)
}

// SemaphoreLineKey returns the Redis key of the line of waiters of
// semaphore name: LockKey(name) + ":sem:line" (S4).
func SemaphoreLineKey(name string) string { return LockKey(name) + ":sem:line" }

// SemaphoreCounterKey returns the Redis key of the fencing counter of
// semaphore name, one for all its slots: LockKey(name) + ":sem:fence"
// (S5). It has no TTL and is never deleted.
func SemaphoreCounterKey(name string) string { return LockKey(name) + ":sem:fence" }
