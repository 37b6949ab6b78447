package redlock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
)

// Leader election (ALGORITHM.md V1-V8). Leadership of election NAME is the
// lock called ElectionPrefix+NAME, taken with fencing and auto-extension:
// one leader at a time is the lock's exclusion (A7), and the term is its
// fencing token, strictly greater for every later leader (F4). The leader
// publishes its value and term in a leader record next to the lock's key
// (LeaderKey), which names the leadership by a fingerprint of its lock
// value; a read reports the record only while the lock key still holds that
// value, so the record needs no TTL of its own, and Leader trusts only what
// a quorum of nodes reports.

// ElectionPrefix starts the lock name of every election: election NAME is
// the lock "election:NAME", so its keys are LockKey("election:NAME") and
// the keys next to it. A Lock of that name excludes the leaders, as any
// holder of the lock would, but publishes no leader.
const ElectionPrefix = "election:"

// MaxLeaderValueLen is the longest value a candidate may campaign with, in
// bytes. The value is public: Leader and Observe report it to anyone.
const MaxLeaderValueLen = 4096

// Leader is a leadership as Leader and Observe report it. The zero Leader
// (Token 0) is what Observe sends when nobody leads.
type Leader struct {
	Value string // what the leader campaigned with
	Token uint64 // its term: strictly greater for every later leader (V2)
}

// Election is one election, by name, on a Client's nodes. It is safe for
// concurrent use; it holds no connection of its own and needs no closing.
type Election struct {
	c      *Client
	name   string // the election's name
	lock   string // ElectionPrefix + name: the lock that is the leadership (V1)
	key    any    // LockKey(lock), boxed once
	record any    // LeaderKey(name), boxed once
	// highest is the highest term Leader returned (V5).
	highest atomic.Uint64
}

// LeaderKey returns the Redis key of the leader record of election name:
// LockKey(ElectionPrefix+name) + ":leader", a hash of the leader's term,
// value and lock fingerprint, with no TTL (ALGORITHM.md V3). Its name is
// also the channel on which a new leader is announced.
func LeaderKey(name string) string { return LockKey(ElectionPrefix+name) + ":leader" }

// Election returns the election called name. It fails with an error
// wrapping ErrInvalidOption when name is empty or ElectionPrefix+name is
// longer than MaxNameLen.
func (c *Client) Election(name string) (*Election, error) {
	switch {
	case name == "":
		return nil, fmt.Errorf("%w: empty election name", ErrInvalidOption)
	case len(ElectionPrefix)+len(name) > MaxNameLen:
		return nil, fmt.Errorf("%w: election name of %d bytes (%.20q...): longer than %d", ErrInvalidOption, len(name), name, MaxNameLen-len(ElectionPrefix))
	}
	lock := ElectionPrefix + name
	return &Election{c: c, name: name, lock: lock, key: LockKey(lock), record: LeaderKey(name)}, nil
}

// Name returns the election's name.
func (e *Election) Name() string { return e.name }

// Campaign blocks until this caller leads the election, or ctx ends. The
// returned *Lock is the leadership (V1): its Token is the term (V2), Done
// closes when the leadership may be lost, and Unlock resigns, handing the
// leadership to the next candidate in line in about one round trip (V7).
//
// Campaign waits in the lock's line, in arrival order with the candidates of
// every client, and keeps trying until ctx ends: the error then wraps
// ctx.Err() (and ErrNotAcquired). Once it holds the lock it publishes value
// and the term on the nodes, and returns only once a quorum holds them
// (V3); when that fails within the lock's validity it resigns and campaigns
// again. The options are Lock's, for this campaign: WithFencing and
// WithAutoExtend are always on (the term is the fencing token, and a
// leadership lasts until Unlock, WithMaxHold or a loss), and WithTries is
// refused, with an error wrapping ErrInvalidOption, since Campaign waits
// until ctx ends: bound the wait with ctx. value is public, at most
// MaxLeaderValueLen bytes.
func (e *Election) Campaign(ctx context.Context, value string, opts ...Option) (*Lock, error) {
	if len(value) > MaxLeaderValueLen {
		return nil, fmt.Errorf("%w: leader value of %d bytes (%.20q...): longer than %d", ErrInvalidOption, len(value), value, MaxLeaderValueLen)
	}
	probe := config{tries: math.MinInt}
	probe.apply(opts)
	if probe.tries != math.MinInt {
		return nil, fmt.Errorf("%w: tries %d: Campaign waits until its context ends; bound it with the context", ErrInvalidOption, probe.tries)
	}
	// V1, V2: the leadership is the lock, fenced and kept extended; the
	// caller's options come first, so these win.
	opts = append(opts[:len(opts):len(opts)], WithFencing(), WithAutoExtend(), WithTries(math.MaxInt))
	for {
		l, err := e.c.Lock(ctx, e.lock, opts...)
		if err != nil {
			if ctx.Err() != nil || !errors.Is(err, ErrNotAcquired) || errors.Is(err, ErrClosed) {
				return nil, err
			}
			continue // tries ran out: not in a lifetime
		}
		if e.publish(ctx, l, value) {
			return l, nil
		}
		// V3: the record did not reach a quorum while the lock held:
		// resign, so that the next in line gets its turn, and campaign
		// again from the back of the line.
		l.Unlock(context.WithoutCancel(ctx))
		if err := ctx.Err(); err != nil {
			return nil, e.c.unsent("lock", e.lock, ErrNotAcquired, err)
		}
	}
}

// publish writes the leader record of l on every node, only where l's key
// holds its value and no higher term is recorded (V3). It reports whether a
// quorum holds it while l is still held.
func (e *Election) publish(ctx context.Context, l *Lock, value string) bool {
	args := []any{electHash, 2, e.key, e.record, "publish", l.value, strconv.FormatUint(l.token, 10), value}
	r := e.c.run(ctx, nil, 0, l.nodeTimeout, "EVALSHA", args)
	return r.ok() && l.Err() == nil
}

// Leader returns the current leader, as a quorum of the nodes reports it
// (V4): a node reports the record only while the election's lock key holds
// the lock value the record names, so a leadership that a quorum no longer
// holds is not reported. It fails with a *NoLeaderError, wrapping
// ErrNoLeader, when no leadership is reported by a quorum: nobody leads, a
// hand-over is under way, too many nodes failed (their *NodeError inside),
// ctx ended (its error inside), or the quorum reports a term older than one
// this Election already returned: Leader never goes back in time on one
// Election (V5). Each node's request is bounded by the client's node
// timeout, and Leader returns as soon as the outcome is known (as A6).
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	l, r, err := e.read(ctx)
	if err != nil {
		return Leader{}, err
	}
	for {
		h := e.highest.Load()
		if l.Token < h {
			// V5: an answer older than one given is not given.
			nle := r.noLeader()
			nle.Older = l.Token
			return Leader{}, nle
		}
		if l.Token == h || e.highest.CompareAndSwap(h, l.Token) {
			return l, nil
		}
	}
}
