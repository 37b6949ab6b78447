package redlock

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/quorum"
)

// Lock is a held lock. It exists only once acquired, and is one-shot: after
// Unlock, or once it is lost, nothing done with it can touch a later
// acquisition of the same name (ALGORITHM.md R4), because each acquisition
// writes its own random value. A Lock is safe for concurrent use.
type Lock struct {
	c           *Client
	name, key   string
	value       string
	token       uint64
	nodeTimeout time.Duration
	driftFactor float64

	mu    sync.Mutex
	until time.Time // local deadline, monotonic (H1)
	held  bool      // false once released
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.name }

// Token returns the lock's fencing token; it is 0 when fencing is off.
func (l *Lock) Token() uint64 { return l.token }

// Until returns the local deadline: T1 + TTL - drift, where T1 is when the
// acquisition (or the last successful Extend) was first written
// (ALGORITHM.md A7, E3). It is computed locally on the monotonic clock; the
// holder must not assume it holds the lock at or after this time (H1). After
// Unlock it is the time of the Unlock call.
func (l *Lock) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Unlock releases the lock: it invalidates the handle first (R2), then
// deletes the key on all nodes in parallel where it still holds this lock's
// value, never another holder's (R1, R3). It returns nil once a quorum
// confirmed the delete; an error wrapping ErrNotHeld when the lock had
// expired or was already released (no node held it); otherwise a
// *QuorumError with the nodes' failures (the keys left behind expire with
// their TTL). Nodes that have not answered when the outcome is known finish
// in the background, bounded by the node timeout.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	held := l.held
	l.held = false
	if now := l.c.clock.Now(); held && now.Before(l.until) {
		l.until = now
	}
	l.mu.Unlock()
	if !held {
		return fmt.Errorf("%w: lock %q was already released by this handle", ErrNotHeld, l.name)
	}
	c := l.c
	out := quorum.Run(ctx, quorum.Round[int64]{
		N: len(c.pools),
		Call: func(i int) quorum.Reply[int64] {
			return c.call(ctx, i, l.nodeTimeout, nil, releaseScript, l.key, l.value)
		},
	})
	out.Settle(true)
	if out.OK() {
		return nil
	}
	return l.roundError("unlock", out)
}

// Extend sets the lock's TTL to ttl on the nodes where it still holds this
// lock's value, and moves Until() to Te + ttl - drift, Te being when the
// request was first written (E3). It never re-creates a missing key (E2).
// It fails at once, without touching Redis, with an error wrapping
// ErrNotHeld when the lock was released or Until() has passed (E1). When it
// fails otherwise, Until() is unchanged: the lock may still be held until
// then (E4). A ttl out of range gives an error wrapping ErrInvalidOption.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	if err := validTTL(ttl, l.driftFactor, l.nodeTimeout); err != nil {
		return err
	}
	c := l.c
	l.mu.Lock()
	held, until := l.held, l.until
	l.mu.Unlock()
	switch {
	case !held:
		return fmt.Errorf("%w: lock %q was released", ErrNotHeld, l.name)
	case !c.clock.Now().Before(until):
		return fmt.Errorf("%w: lock %q expired at its deadline", ErrNotHeld, l.name)
	}
	te := newFirstWrite(c.clock)
	ttlMs := ttl.Milliseconds()
	out := quorum.Run(ctx, quorum.Round[int64]{
		N: len(c.pools),
		Call: func(i int) quorum.Reply[int64] {
			return c.call(ctx, i, l.nodeTimeout, te, extendScript, l.key, l.value, ttlMs)
		},
	})
	out.Settle(true)
	newUntil := te.at().Add(ttl - driftAllowance(ttl, l.driftFactor))
	expired := !c.clock.Now().Before(newUntil)
	if out.OK() && !expired {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.held { // Unlock ran meanwhile: it wins (R2)
			return fmt.Errorf("%w: lock %q was released during Extend", ErrNotHeld, l.name)
		}
		l.until = newUntil
		return nil
	}
	qe := l.roundError("extend", out)
	qe.Expired = out.OK() && expired
	return qe
}

// roundError describes a failed Extend or Unlock round. It wraps ErrNotHeld
// only when refusals alone decided it: then no quorum can hold this value.
func (l *Lock) roundError(op string, out quorum.Outcome[int64]) *QuorumError {
	var sentinel error
	if out.Tally.Refused >= out.Tally.N-out.Tally.Q+1 {
		sentinel = ErrNotHeld
	}
	return newQuorumError(op, l.name, out.Tally, sentinel, out.Err, nodeErrors(out.Replies))
}
