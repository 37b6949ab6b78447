package redlock

import (
	"context"
	"strconv"
	"time"

	"github.com/quorumlock/quorumlock/internal/quorum"
)

// Hand-over (ALGORITHM.md L12). A waiter's attempts in line (takes) carry
// a number, seq, that grows with each of them, and register the attempt's
// value and lease on each node. A release that finds the waiter first in
// line sets the key to that value for the lease only, and announces the
// waiter's id and that seq: the node wrote the key after it ran attempt
// seq, so after the waiter read T1 for it, and keeps it until at least
// T1(seq) + lease on its clock. Once a quorum of nodes handed it the value
// of one attempt that way, within that time, the waiter holds the lock:
// Lock returns after one release and one announcement, instead of a
// release, an announcement, an attempt and its reply. It then claims the
// lock for its TTL (line.lua claim), which also takes it out of the line
// on every node (L4).

// seqWindow is how many of a waiter's attempts it remembers: a hand-over
// of an older one is not counted (its lease ended long ago, or nearly).
const seqWindow = 64

// attemptRec is what a waiter remembers of one of its attempts in line.
type attemptRec struct {
	seq    uint64
	t1     time.Time
	value  any
	undone []bool // the nodes its undo went to: they pass a hand-over of it on
}

// handovers is what a waiter knows of the locks handed over to it, and of
// its numbered attempts; guarded by its wakeup's mu.
type handovers struct {
	seq  uint64                // the last attempt's seq; 0 before the first
	recs [seqWindow]attemptRec // recs[s % seqWindow]: attempt s
	got  []uint64              // per node: the seq of its latest hand-over, 0 for none
}

// sent numbers an attempt whose T1 is t1 and whose value is value: T1 read
// before it is queued (A2).
func (w *wakeup) sent(t1 time.Time, value any) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.seq++
	w.h.recs[w.h.seq%seqWindow] = attemptRec{seq: w.h.seq, t1: t1, value: value}
	return w.h.seq
}

// rec returns attempt seq's record, or nil when it is unknown or too old;
// w.mu is held.
func (h *handovers) rec(seq uint64) *attemptRec {
	r := &h.recs[seq%seqWindow]
	if seq == 0 || r.seq != seq {
		return nil
	}
	return r
}

// undoing records that the undo of attempt seq goes to node i: the node
// passes on the attempt's value wherever it finds it (line.lua undo), a
// hand-over of it included, before or after, so none from node i counts.
// Called before the undo is queued: the value is the attempt's own (A1),
// so an undo that arrives late, even after later attempts, touches
// nothing else.
func (w *wakeup) undoing(i int, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.h.rec(seq)
	if r == nil {
		return
	}
	if r.undone == nil {
		r.undone = make([]bool, len(w.h.got))
	}
	r.undone[i] = true
}

// handedOver takes node i's announcement that it handed the lock over to
// this waiter with attempt seq's value; it rings the waiter once a quorum
// of nodes has, with one attempt's value.
func (w *wakeup) handedOver(i int, seq uint64) {
	w.mu.Lock()
	h := &w.h
	r := h.rec(seq)
	if r == nil || r.undone != nil && r.undone[i] {
		w.mu.Unlock()
		return
	}
	h.got[i] = seq // a node's announcements come in the order it made them
	n := 0
	for _, g := range h.got {
		if g == seq {
			n++
		}
	}
	w.mu.Unlock()
	if n >= w.need {
		w.ring()
	}
}

// held reports whether a quorum of nodes handed the lock over to the waiter
// with the value of one attempt, and still holds it at now: for lease past
// the attempt's T1 (the lease already less the drift, A7). It returns the
// latest such attempt's value, the end of its lease, and the nodes that
// count.
func (w *wakeup) held(now time.Time, lease time.Duration) (value any, until time.Time, t quorum.Tally, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := &w.h
	var best *attemptRec
	count := 0
	for _, s := range h.got {
		r := h.rec(s)
		if r == nil || (best != nil && s <= best.seq) || !now.Before(r.t1.Add(lease)) {
			continue
		}
		n := 0
		for i, g := range h.got {
			if g == s && (r.undone == nil || !r.undone[i]) {
				n++
			}
		}
		if n >= w.need {
			best, count = r, n
		}
	}
	if best == nil {
		return nil, until, t, false
	}
	t = quorum.NewTally(len(h.got))
	for range count {
		t.Add(quorum.Granted)
	}
	return best.value, best.t1.Add(lease), t, true
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
	keys := nameKeys(name)
	l := newLock(c, name, keys[0], value, 0, cfg, now, until)
	l.claim(keys, w, cfg)
	if c.observed() {
		c.attempted(ctx, name, cfg, t, 0, 0, nil)
	}
	return l
}

// handOverLease is how long a node keeps a lock handed over to a waiter
// before its claim: the waiter registers it with each attempt, and the
// release uses it, whatever the releaser's own node timeout (L12).
func handOverLease(tau time.Duration) time.Duration { return 4 * tau }

// claim makes a lock handed over to w last its TTL (L12) with line.lua
// claim on every node, which takes w out of the line there (L4) and puts
// the next of the client's own waiters for the name in its place (L9).
// Until moves to Te + TTL - drift once a quorum answered that it holds the
// key; short of that, the lock ends at the hand-over's Until.
func (l *Lock) claim(keys []any, w *waiter, cfg *config) {
	c := l.c
	tau := cfg.nodeTimeout
	args := append(lineKeys(keys), "claim", w.id, l.value, cfg.ttl.Milliseconds(), reserveFor(tau).Milliseconds())
	c.local.handOff(l.name, w, func(next *waiter) {
		if next != nil {
			args = append(args, next.id, next.ticket(), lineLifetime(tau).Milliseconds())
		}
		te := c.clock.Now() // E3: read before sending
		r := c.newRound(nil, 0, tau, "EVALSHA").post(context.Background(), "EVALSHA", args)
		r.whenAnswered(func(granted []bool) { l.claimed(te, granted) })
	})
}

// claimed moves Until after a claim sent at te, once every node answered.
func (l *Lock) claimed(te time.Time, granted []bool) {
	n := 0
	for _, g := range granted {
		if g {
			n++
		}
	}
	l.mu.Lock()
	defer l.unlock()
	l.expireLocked()
	if !l.held { // Unlock ran, and its release after the claim on each node
		return
	}
	if l.err != nil {
		// Ended (its deadline passed) before the claim was answered: the
		// nodes that took the claim keep the key for a TTL, unless it is
		// released.
		if n > 0 {
			go l.release(context.Background())
		}
		return
	}
	if n < quorum.Majority(len(granted)) {
		// The lock ends at the hand-over's Until, and is released then
		// (expireLocked), watched or not: a claim that timed out may
		// still have been applied, and left the keys for a TTL.
		l.endCause = &LockLostError{Name: l.name, Reason: "its hand-over could not be claimed on a quorum", kind: LostExtendFailed}
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
