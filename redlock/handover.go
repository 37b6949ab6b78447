package redlock

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/quorumlock/quorumlock/internal/quorum"
)

// Hand-over (ALGORITHM.md L12). A waiter's attempts in line write one value
// for its whole wait and register it on each node with a number, seq, that
// grows with every request of the waiter that carries one (its takes and
// undos). A release that finds the waiter first in line sets the key to
// that value for a reservation's time only (4 tau) and announces the
// waiter's id and the seq the node had: the node wrote the key after it ran
// request seq, so after the waiter read T1 for it, and keeps it until at
// least T1(seq) + 4 tau on its clock. Once a quorum of nodes handed it the
// lock that way, within that time, the waiter holds it: Lock returns after
// one release and one announcement, instead of a release, an announcement,
// an attempt and its reply. It then claims the lock for its TTL (line.lua
// claim), which also takes it out of the line on every node (L4).

// seqWindow is how many of a waiter's numbered requests it remembers the
// T1 of: a hand-over named by an older one is not counted (its lease ended
// long ago, or nearly; the waiter's next take collects the key instead).
const seqWindow = 64

// handovers is what a waiter knows of the locks handed over to it, and of
// its numbered requests; guarded by its wakeup's mu.
type handovers struct {
	seq    uint64               // the last numbered request's seq; 0 before the first
	sentAt [seqWindow]time.Time // sentAt[s % seqWindow]: request s's T1
	void   []uint64             // per node: a hand-over of a lower seq is undone (an undo went there)
	got    []uint64             // per node: the seq of its latest hand-over, 0 for none
	n      int                  // nodes with a hand-over in got
}

// sent numbers a request whose T1 is t1: read before it is queued (A2).
func (w *wakeup) sent(t1 time.Time) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.seq++
	w.h.sentAt[w.h.seq%seqWindow] = t1
	return w.h.seq
}

// undoing records that request seq, an undo, goes to node i: the node
// passes on a key it handed over before seq (line.lua undo), so such a
// hand-over no longer counts. Called before the undo is queued.
func (w *wakeup) undoing(i int, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.void[i] = seq
	if g := w.h.got[i]; g != 0 && g < seq {
		w.h.got[i] = 0
		w.h.n--
	}
}

// handedOver takes node i's announcement that it handed the lock over to
// this waiter after its request seq; it rings the waiter once a quorum of
// nodes has.
func (w *wakeup) handedOver(i int, seq uint64) {
	w.mu.Lock()
	h := &w.h
	if seq == 0 || seq > h.seq || seq+seqWindow <= h.seq || seq < h.void[i] || seq <= h.got[i] {
		w.mu.Unlock()
		return
	}
	if h.got[i] == 0 {
		h.n++
	}
	h.got[i] = seq
	ring := h.n >= w.need
	w.mu.Unlock()
	if ring {
		w.ring()
	}
}

// held reports whether a quorum of nodes handed the lock over to the waiter
// and still holds it at now, each for lease past its request's T1 (the
// lease already less the drift, A7); until is when the quorum's shortest
// hold ends, t the nodes that count.
func (w *wakeup) held(now time.Time, lease time.Duration) (until time.Time, t quorum.Tally, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := &w.h
	if h.n < w.need {
		return until, t, false
	}
	ends := make([]time.Time, 0, len(h.got))
	for _, s := range h.got {
		if s != 0 && s+seqWindow > h.seq {
			ends = append(ends, h.sentAt[s%seqWindow].Add(lease))
		}
	}
	if len(ends) < w.need {
		return until, t, false
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return b.Compare(a) })
	until = ends[w.need-1] // the quorum that holds the longest
	if !now.Before(until) {
		return until, t, false
	}
	t = quorum.NewTally(len(h.got))
	for _, e := range ends {
		if now.Before(e) {
			t.Add(quorum.Granted)
		}
	}
	return until, t, true
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
// value can be handed a lock: never with fencing, whose token needs the
// attempt's count (F1).
func (c *Client) handedOver(ctx context.Context, name string, cfg *config, w *waiter) *Lock {
	if w == nil || w.value == nil || cfg.fencing {
		return nil
	}
	now := c.clock.Now()
	lease := reserveFor(cfg.nodeTimeout)
	until, t, ok := w.bell.held(now, lease-driftAllowance(lease, cfg.driftFactor))
	if !ok {
		return nil
	}
	c.stats.handOvers.Add(1)
	keys := nameKeys(name)
	l := newLock(c, name, keys[0], w.value, 0, cfg, now, until)
	l.claim(keys, w, cfg)
	if c.observed() {
		c.attempted(ctx, name, cfg, t, 0, 0, nil)
	}
	return l
}

// claim makes a lock handed over to w last its TTL (L12) with line.lua
// claim on every node, which takes w out of the line there (L4) and puts
// the next of the client's own waiters for the name in its place (L9).
// Until moves to Te + TTL - drift once a quorum answered that it holds the
// key; short of that, the lock ends at the hand-over's Until.
func (l *Lock) claim(keys []any, w *waiter, cfg *config) {
	c := l.c
	tau := cfg.nodeTimeout
	args := append(lineKeys(keys), "claim", w.id, w.value, cfg.ttl.Milliseconds(), reserveFor(tau).Milliseconds())
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
	if !l.held || l.err != nil {
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
