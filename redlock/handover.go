package redlock

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/quorumlock/internal/clock"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// Hand-over (ALGORITHM.md L12). A waiter's attempts in line (takes) carry
// a number, seq, that grows with each of them, and register the attempt's
// value and lease on each node. A release that finds the waiter first in
// line sets the key to that value for the lease only, and announces the
// waiter's id and that seq: the node wrote the key after it ran attempt
// seq, so after the waiter read T1 for it, and keeps it until at least
// T1(seq) + lease on its clock. The waiter counts hand-overs of its latest
// attempt only (a newer attempt takes an older one's key as its own), and
// only once every node has answered that attempt and none needs its undo
// (A8): the attempt's value is then on no node but by a hand-over. Once a
// quorum of nodes handed it over, within that time, the waiter holds the
// lock: Lock returns after one release and one announcement, instead of a
// release, an announcement, an attempt and its reply. It then claims the
// lock for its TTL (line.lua claim), which also takes it out of the line on
// every node (L4).

// lastAttempt is what a waiter knows of its latest attempt in line and of the
// hand-overs of it; guarded by its wakeup's mu.
type lastAttempt struct {
	seq     uint64    // the attempt's number; 0 before the first
	t1      time.Time // its T1
	value   any
	settled bool     // every node answered it, and no undo of it went anywhere
	got     []uint64 // per node: the seq of its latest hand-over announced
}

// sent numbers a new attempt, whose T1 is t1 (read before it is queued,
// A2) and value value; it returns its seq.
func (w *wakeup) sent(t1 time.Time, value any) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := &w.h
	h.seq, h.t1, h.value, h.settled = h.seq+1, t1, value, false
	return h.seq
}

// settle records that every node answered attempt seq and no undo of it
// went anywhere (an undo passes the attempt's value on, however late it
// arrives, so an attempt undone anywhere never settles); it rings the
// waiter if a quorum has handed the attempt over.
func (w *wakeup) settle(seq uint64) {
	w.mu.Lock()
	ring := false
	if w.h.seq == seq {
		w.h.settled = true
		ring = w.h.handedLocked() >= w.need
	}
	w.mu.Unlock()
	if ring {
		w.ring()
	}
}

// handedOver takes node i's announcement that it handed the lock over to
// this waiter with attempt seq's value; it rings the waiter once a quorum
// of nodes has, for its latest attempt: the hand-overs count once it is
// settled, and otherwise its next attempt takes them as its own.
func (w *wakeup) handedOver(i int, seq uint64) {
	w.mu.Lock()
	h := &w.h
	h.got[i] = seq // a node's announcements come in the order it made them
	ring := w.waitingLocked() >= w.need
	w.mu.Unlock()
	if ring {
		w.ring()
	}
}

// handedLocked counts the nodes that handed the latest attempt over.
func (h *lastAttempt) handedLocked() int {
	n := 0
	for _, g := range h.got {
		if g == h.seq {
			n++
		}
	}
	return n
}

// held reports whether a quorum of nodes handed the waiter's latest
// attempt over, settled, and still holds it at now: for lease past its T1
// (the lease already less the drift, A7). It returns the attempt's value,
// the end of its lease, and the nodes that count.
func (w *wakeup) held(now time.Time, lease time.Duration) (value any, until time.Time, t quorum.Tally, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := &w.h
	n := h.handedLocked()
	until = h.t1.Add(lease)
	if h.seq == 0 || !h.settled || n < w.need || !now.Before(until) {
		return nil, until, t, false
	}
	t = quorum.NewTally(len(h.got))
	t.Granted = n
	return h.value, until, t, true
}

// handOver parses a hand-over's announcement: the waiter's id, one space,
// the seq (line_head.lua hand).
func (w *wakeup) handOver(i int, payload []byte) bool {
	n := len(w.id)
	if len(payload) <= n+1 || payload[n] != ' ' || string(payload[:n]) != w.id {
		return false
	}
	seq, err := strconv.ParseUint(string(payload[n+1:]), 10, 64)
	if err == nil {
		w.handedOver(i, seq)
	}
	return true
}

// handedOver returns the lock of name when a quorum handed it over to w
// (L12), and claims it; nil otherwise. Only a waiter that registered its
// attempts can be handed a lock: never with fencing, whose token needs the
// attempt's count (F1).
func (c *Client) handedOver(ctx context.Context, name string, cfg *config, w *waiter) *Lock {
	if w == nil || cfg.fencing {
		return nil
	}
	now := c.clock.Now()
	lease := handOverLease(cfg.nodeTimeout)
	value, until, t, ok := w.bell.held(now, lease-driftAllowance(lease, cfg.driftFactor))
	if !ok {
		return nil
	}
	c.stats.handOvers.Add(1)
	keys := w.nameKeys(name)
	l := newLock(c, name, keys[0], value, 0, cfg, now, until)
	l.line = w.hold(keys)
	if c.observed() { // O1: held before the claim can end it
		c.attempted(ctx, name, cfg, t, 0, 0, nil)
	}
	l.claim(keys, w, cfg)
	return l
}

// handOverLease is how long a node keeps a lock handed over to a waiter
// before its claim: the waiter registers it with each attempt, and the
// release uses it, whatever the releaser's own node timeout (L12).
func handOverLease(tau time.Duration) time.Duration { return 4 * tau }

// lineHold is what a lock taken in line keeps (L4, L12): allocated only
// for those, so that the others stay small.
type lineHold struct {
	waiter any   // the id of the waiter that took it, boxed: its release takes it out of the line
	keys   []any // the waiter's keys (nameKeys): the release's line and grants
	// claimMu orders a hand-over's claim before Unlock's release on every
	// connection; pendingClaim is the claim not yet sent, nil once it was,
	// or needless; claimTimer sends it, and Unlock stops it.
	claimMu      sync.Mutex
	pendingClaim []any
	claimTimer   clock.Timer
	claimDecided atomic.Bool // the delayed claim was sent, or dropped (tests)
}

// hold is what a lock w took, with its keys, keeps (lineHold).
func (w *waiter) hold(keys []any) *lineHold { return &lineHold{waiter: w.id, keys: keys} }

// claimAfter is how long a lock handed over is held before it is claimed
// (L12), unless the client's next waiter for the name takes its place in
// line with the claim (L9): a holder that releases sooner needs no claim,
// its release taking its waiter out of the line.
func claimAfter(tau time.Duration) time.Duration { return tau / 5 }

// claim makes a lock handed over to w last its TTL (L12) with line.lua
// claim on every node, which takes w out of the line there (L4) and puts
// the next of the client's own waiters for the name in its place (L9):
// at once when there is such a waiter, after claimAfter otherwise, unless
// Unlock came first. Until moves to Te + TTL - drift once a quorum answered
// that it holds the key; short of that, the lock ends at the hand-over's
// Until.
func (l *Lock) claim(keys []any, w *waiter, cfg *config) {
	c := l.c
	tau := cfg.nodeTimeout
	args := append(lineKeys(keys), "claim", w.id, l.value, cfg.ttl.Milliseconds(), reserveFor(tau).Milliseconds())
	var r *round
	var te time.Time
	c.local.handOff(l.name, w, func(next *waiter) {
		l.line.claimMu.Lock()
		defer l.line.claimMu.Unlock()
		if next != nil {
			r, te = l.postClaimLocked(append(args, next.id, next.ticket(), lineLifetime(tau).Milliseconds()))
			return
		}
		l.line.pendingClaim = args
		l.line.claimTimer = c.clock.AfterFunc(claimAfter(tau), l.claimNow)
	})
	if r != nil {
		l.whenClaimed(r, te)
	}
}

// claimNow sends the claim Unlock has not made needless. A lock that ended
// otherwise (lost, or its deadline passed) is not claimed, which would
// keep its keys for a TTL: it is released, which takes its waiter out of
// the line (L12); after Close, nothing is sent.
func (l *Lock) claimNow() {
	h := l.line
	defer h.claimDecided.Store(true)
	l.mu.Lock()
	l.expireLocked()
	unlocked, lost := !l.held, l.err != nil
	l.unlock() // before claimMu: a loss is reported with no mutex held
	select {
	case <-l.c.closing:
		unlocked = true
	default:
	}
	h.claimMu.Lock()
	args := h.pendingClaim
	h.pendingClaim = nil
	var r *round
	var te time.Time
	if args != nil && !unlocked && !lost {
		r, te = l.postClaimLocked(args)
	}
	h.claimMu.Unlock()
	switch {
	case r != nil:
		l.whenClaimed(r, te)
	case args != nil && !unlocked:
		go l.release(context.Background())
	}
}

// postClaimLocked queues the claim on every node's connection; claimMu is
// held, so that Unlock's release is queued after it on each (or the claim
// is never sent). It returns the claim's round and when it was sent.
func (l *Lock) postClaimLocked(args []any) (*round, time.Time) {
	c := l.c
	c.stats.claims.Add(1)
	te := c.clock.Now() // E3: read before sending
	return c.newRound(nil, 0, l.nodeTimeout, "EVALSHA").post(context.Background(), "EVALSHA", args), te
}

// whenClaimed moves Until once every node answered the claim r sent at
// te. Called with none of the client's mutexes held: claimed may run at
// once, and report a loss (O1).
func (l *Lock) whenClaimed(r *round, te time.Time) {
	r.whenAnswered(func(finals []quorum.Result) { l.claimed(te, finals) })
}

// dropClaim makes a claim not yet sent needless: Unlock's release takes the
// waiter out of the line instead (L12). Once it returns, a claim sent
// before is queued ahead of anything the caller sends next.
func (l *Lock) dropClaim() {
	if h := l.line; h != nil {
		h.claimMu.Lock()
		if h.pendingClaim != nil {
			h.pendingClaim = nil
			h.claimTimer.Stop()
			h.claimDecided.Store(true)
		}
		h.claimMu.Unlock()
	}
}

// claimed moves Until after a claim sent at te, once every node answered.
func (l *Lock) claimed(te time.Time, finals []quorum.Result) {
	t := quorum.NewTally(len(finals))
	for _, f := range finals {
		t.Add(f)
	}
	l.mu.Lock()
	defer l.unlock()
	l.expireLocked()
	if !l.held { // Unlock ran, and its release after the claim on each node
		return
	}
	if l.err != nil {
		// Ended (its deadline passed) before the claim was answered: the
		// nodes that took the claim, or may have, keep the key for a TTL,
		// unless it is released.
		if t.Refused < t.N { // granted, or failed: it may have applied
			go l.release(context.Background())
		}
		return
	}
	if !t.Succeeded() {
		// The lock ends at the hand-over's Until, and is released then
		// (expireLocked), watched or not: a claim that timed out may
		// still have been applied, and left the keys for a TTL.
		l.releaseAtEnd = true
		if l.expiry != nil {
			l.expiry.Stop()
		}
		l.expiry = l.c.clock.AfterFunc(l.until.Sub(l.c.clock.Now()), l.checkExpiry)
		return
	}
	until := te.Add(l.ttl - driftAllowance(l.ttl, l.driftFactor))
	if until.After(l.until) && l.c.clock.Now().Before(until) {
		l.until = until
		l.armLocked()
	}
}
