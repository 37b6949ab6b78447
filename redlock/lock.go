package redlock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/clock"
)

// Lock is a held lock. It exists only once acquired, and is one-shot: after
// Unlock, or once it is lost, nothing done with it can touch a later
// acquisition of the same name (ALGORITHM.md R4), because each acquisition
// writes its own random value. A Lock is safe for concurrent use.
type Lock struct {
	c           *Client
	name        string
	key, value  any       // boxed once, shared by every request
	releaseArgs []any     // a semaphore's permit: its release (S3); nil for a lock
	line        *lineHold // a lock taken in line (L4, L12); nil for the others
	token       uint64
	ttl         time.Duration
	nodeTimeout time.Duration
	driftFactor float64
	acquired    time.Time
	maxHold     time.Duration // auto-extension stops this long after acquired; 0: never

	// extendMu makes Extends take turns: two at once with different TTLs
	// could leave until at the later Te+TTL while the nodes keep the
	// other one (the PEXPIRE that ran last), a deadline past the keys.
	extendMu sync.Mutex

	mu           sync.Mutex
	until        time.Time     // local deadline, monotonic (H1)
	held         bool          // false once Unlock was called
	err          error         // why the lock ended; nil while held
	endCause     error         // why the lock will end at until (max hold), or nil
	releaseAtEnd bool          // release the keys when until passes: a hand-over's claim failed (L12)
	done         chan struct{} // made on first Done (or by auto-extension)
	expiry       clock.Timer   // closes done at until (H2), while done exists (or the client is observed)
	lost         error         // a loss not yet reported to the observers (unlock)
}

// errUnlocked is Err after Unlock.
var errUnlocked = fmt.Errorf("%w: released by Unlock", ErrNotHeld)

func newLock(c *Client, name string, key, value any, token uint64, cfg *config, acquired, until time.Time) *Lock {
	l := &Lock{
		c: c, name: name, key: key, value: value, token: token,
		ttl: cfg.ttl, nodeTimeout: cfg.nodeTimeout, driftFactor: cfg.driftFactor,
		acquired: acquired, maxHold: cfg.maxHold, until: until, held: true,
	}
	if c.observed() {
		// O1: an observed lock ends at its deadline even if nobody watches
		// it, so that its EventLost comes then.
		l.mu.Lock()
		l.armLocked()
		l.mu.Unlock()
	}
	if cfg.autoExtend {
		c.ext.schedule(l)
	}
	return l
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.name }

// Token returns the lock's fencing token: with WithFencing, a number
// strictly greater than the token of every earlier acquisition of this name
// (ALGORITHM.md F4); 0 without. Extend never changes it (E5). A
// semaphore's permit has weaker order (S5): its token is above that of
// every permit acquired before its attempt began, but permits acquired at
// once are not ordered and may share a token, so a resource shared by K
// holders must not refuse a token below the largest it has seen (F5).
func (l *Lock) Token() uint64 { return l.token }

// Until returns the local deadline: T1 + TTL - drift, where T1 is when the
// acquisition (or the last successful Extend) was first written
// (ALGORITHM.md A7, E3). It is computed locally on the monotonic clock; the
// holder must not assume it holds the lock at or after this time (H1). Once
// the lock is released or lost it is the moment that happened, at the latest.
// A lock that a release handed over to Lock's caller starts with the
// hand-over's few node timeouts; held a fifth of a node timeout (at once
// when the client has another waiter for the name), it is claimed for its
// TTL, and Until moves there a round trip later (ALGORITHM.md L12). A lock
// released sooner is never claimed.
func (l *Lock) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Done returns a channel that is closed when the holder may no longer
// assume it holds the lock (ALGORITHM.md H2): at Until() unless extended in
// time, on Unlock, when auto-extension gives up, or when an Extend learns
// that a quorum no longer holds the key. Err then says why.
//
// The channel and its timer are made on the first call, so a lock nobody
// watches costs neither (but the timer of an observed client's locks).
func (l *Lock) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.unlock()
	if l.done == nil {
		l.expireLocked() // past the deadline already: made closed
		l.done = make(chan struct{})
		if l.err != nil {
			close(l.done)
		} else {
			l.armLocked()
		}
	}
	return l.done
}

// Err returns nil while the lock is held; then an error wrapping
// ErrLockLost when the lock ran out or could not be kept, or ErrNotHeld
// after Unlock.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.unlock()
	l.expireLocked()
	return l.err
}

// armLocked schedules the loss signal at until (H2), if anyone watches Done
// or observes the client; l.mu is held.
func (l *Lock) armLocked() {
	if l.done == nil && !l.c.observed() {
		return
	}
	if l.expiry != nil {
		l.expiry.Stop()
	}
	l.expiry = l.c.clock.AfterFunc(l.until.Sub(l.c.clock.Now()), l.checkExpiry)
}

// checkExpiry closes done if the deadline has passed; a timer made stale by
// an Extend finds the deadline moved and does nothing.
func (l *Lock) checkExpiry() {
	l.mu.Lock()
	defer l.unlock()
	l.expireLocked()
}

// expireLocked ends the lock if its deadline has passed; l.mu is held.
func (l *Lock) expireLocked() {
	if l.err != nil || l.c.clock.Now().Before(l.until) {
		return
	}
	cause := l.endCause
	if cause == nil {
		cause = &LockLostError{Name: l.name, Reason: "reached its deadline without an extension", kind: LostExpired}
	}
	l.endLocked(cause) // R2: invalidated locally before anything is sent
	if (l.endCause != nil || l.releaseAtEnd) && l.held {
		// Auto-extension stopped at the max hold, or a hand-over's claim
		// failed (L12): release the keys now rather than leave them to
		// expire on the nodes' clocks.
		go l.release(context.Background())
	}
}

// endLocked invalidates the handle locally and signals why (R2, E4, H2):
// the deadline becomes now at the latest, and done closes. l.mu is held.
func (l *Lock) endLocked(cause error) {
	if l.err != nil {
		return
	}
	if now := l.c.clock.Now(); now.Before(l.until) {
		l.until = now
	}
	l.err = cause
	if cause != errUnlocked && l.c.observed() {
		l.lost = cause // reported once l.mu is released (unlock)
	}
	if l.expiry != nil {
		l.expiry.Stop()
	}
	if l.done != nil {
		close(l.done)
	}
}

// lose ends the lock with cause, if it has not ended yet.
func (l *Lock) lose(cause error) {
	l.mu.Lock()
	defer l.unlock()
	l.endLocked(cause)
}

// Unlock releases the lock: it invalidates the handle first (R2), then
// deletes the key on all nodes in parallel where it still holds this lock's
// value, never another holder's (R1, R3). It returns nil once a quorum
// confirmed the delete; an error wrapping ErrNotHeld when the lock had
// expired or been lost before Unlock, was already released, or no quorum
// held it; otherwise a *QuorumError with the nodes' failures (the keys left
// behind expire with their TTL). Nodes that have not answered when the
// outcome is known finish in the background, bounded by the node timeout.
func (l *Lock) Unlock(ctx context.Context) (err error) {
	var (
		r     *round
		start time.Time
		delta int // -1: this Unlock ended the lock
	)
	if l.c.observed() {
		defer func() { l.observeRound(ctx, EventRelease, false, r, start, delta, err) }()
	}
	l.mu.Lock()
	held := l.held
	l.held = false
	l.expireLocked() // H4: a deadline that passed unwatched is a loss, not a release
	lost := l.err
	l.endLocked(errUnlocked)
	l.unlock()
	if !held {
		return &notHeldError{name: l.name, op: "unlock", reason: "already released by this handle"}
	}
	if lost == nil {
		delta = -1 // held until now: O1
	}
	start = l.c.clock.Now()
	l.dropClaim()
	r = l.release(ctx)
	switch {
	case lost != nil:
		return &notHeldError{name: l.name, op: "unlock", reason: "lost before Unlock", cause: lost}
	case r.ok():
		return nil
	}
	return l.roundError("unlock", r)
}

// release runs compare-and-delete on all nodes (R1); it returns once
// decided. On each node it runs after the acquisition: one connection per
// node keeps the order of requests.
func (l *Lock) release(ctx context.Context) *round {
	if l.releaseArgs != nil {
		return l.c.run(ctx, nil, 0, l.nodeTimeout, "EVALSHA", l.releaseArgs)
	}
	// L2, L12: where waiters are in line, the lock is handed over to the
	// first, or reserved for it; a lock taken in line takes its waiter out
	// of the line first, wherever its leave has not come yet (with the
	// keys its waiter boxed).
	if h := l.line; h != nil {
		return l.c.run(ctx, nil, 0, l.nodeTimeout, "EVALSHA", releaseArgs(l.key, h.keys[1], h.keys[3], l.value, "1", l.nodeTimeout, h.waiter))
	}
	line, grants := lineAndGrants(l.name)
	return l.c.run(ctx, nil, 0, l.nodeTimeout, "EVALSHA", releaseArgs(l.key, line, grants, l.value, "1", l.nodeTimeout, nil))
}

// releaseArgs lays out release.lua's arguments (EVALSHA): the lock key, its
// line and grants, the value, announce ("1" or "0"), the reservation for
// a node timeout of tau, and, when not nil, the id of the waiter that took
// the value in line (L12).
func releaseArgs(key, line, grants, value any, announce string, tau time.Duration, waiter any) []any {
	if waiter == nil {
		return []any{releaseHash, 3, key, line, grants, value, announce, reserveFor(tau).Milliseconds()}
	}
	return []any{releaseHash, 3, key, line, grants, value, announce, reserveFor(tau).Milliseconds(), waiter}
}

// Extend makes the lock last at least ttl from now on the nodes where it
// still holds this lock's value, and moves Until() to Te + ttl - drift, Te
// being when the request was first written (E3), if that is later. It never
// re-creates a missing key (E2) and never shortens a lock: a node keeps its
// key's later expiry (E4), so a ttl shorter than what is left changes
// nothing. It fails at once, without touching Redis, with an error wrapping
// ErrNotHeld when the lock was released, lost or Until() has passed (E1),
// and with the context's error when ctx has already ended (E6). When it
// fails otherwise, Until() is unchanged: the lock may still be held until
// then (E4); but when the nodes say a quorum no longer holds the key, the
// lock is lost and Done closes (H2). A ttl out of range gives an error
// wrapping ErrInvalidOption. The fencing token never changes (E5).
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	return l.extend(ctx, ttl, false)
}

// extend is Extend; auto says that auto-extension made it (EventExtend).
func (l *Lock) extend(ctx context.Context, ttl time.Duration, auto bool) (err error) {
	if err := validTTL(ttl, l.driftFactor, l.nodeTimeout); err != nil {
		return err
	}
	var (
		r  *round
		te time.Time
	)
	if l.c.observed() {
		defer func() { l.observeRound(ctx, EventExtend, auto, r, te, 0, err) }()
	}
	l.extendMu.Lock()
	defer l.extendMu.Unlock()
	c := l.c
	l.mu.Lock()
	l.expireLocked()
	held, until, lost := l.held, l.until, l.err
	l.unlock()
	switch {
	case !held:
		return &notHeldError{name: l.name, op: "extend", reason: "released by Unlock"}
	case lost != nil:
		return &notHeldError{name: l.name, op: "extend", reason: "lost", cause: lost}
	case !c.clock.Now().Before(until):
		return &notHeldError{name: l.name, op: "extend", reason: "its deadline has passed"}
	}
	if err := ctx.Err(); err != nil { // E6: nothing is sent
		return c.unsent("extend", l.name, nil, err)
	}
	te = c.clock.Now() // E3: read before sending
	r = c.run(ctx, nil, 0, l.nodeTimeout, "EVALSHA", []any{extendHash, 1, l.key, l.value, ttl.Milliseconds()})
	// E4: every node that granted keeps the key until Te + ttl at least, and
	// no node's expiry ever moved earlier (PEXPIRE GT), so the quorum behind
	// the old deadline still holds it until then: the later of the two.
	newUntil := te.Add(ttl - driftAllowance(ttl, l.driftFactor))
	if newUntil.Before(until) {
		newUntil = until
	}
	expired := !c.clock.Now().Before(newUntil)
	if r.ok() && !expired {
		l.mu.Lock()
		defer l.unlock()
		switch {
		case !l.held: // Unlock ran meanwhile: it wins (R2)
			return &notHeldError{name: l.name, op: "extend", reason: "released by Unlock during Extend"}
		case l.err != nil: // the deadline passed meanwhile: Done has closed for good
			// The nodes took the new TTL for a lock this handle gave up:
			// release it there rather than leave it for a whole TTL.
			go l.release(context.Background())
			return &notHeldError{name: l.name, op: "extend", reason: "lost during Extend", cause: l.err}
		}
		if newUntil.After(l.until) { // a hand-over's claim may have moved it meanwhile (L12)
			l.until = newUntil // not before until (E4)
			l.armLocked()
		}
		return nil
	}
	qe := l.roundError("extend", r)
	qe.Expired = r.ok() && expired
	if errors.Is(qe, ErrNotHeld) {
		l.lose(&LockLostError{Name: l.name, Reason: "the nodes no longer hold it", Err: qe, kind: LostNotHeld})
	}
	return qe
}

// roundError describes a failed Extend or Unlock round. It wraps ErrNotHeld
// only when refusals alone decided it: then no quorum can hold this value.
func (l *Lock) roundError(op string, r *round) *QuorumError {
	var sentinel error
	if r.tally.Refused >= r.tally.N-r.tally.Q+1 {
		sentinel = ErrNotHeld
	}
	return r.quorumError(op, l.name, sentinel)
}
