package redlock

import (
	"fmt"
	"testing"
	"time"
)

// L12: what a waiter counts of the hand-overs announced to it, on the
// fake clock: a quorum of nodes that handed it the value of one attempt,
// each holding the key for the lease past that attempt's T1; never
// hand-overs of different attempts (different values, A1) added together;
// not a node that the attempt's undo went to (the undo passes the value
// on, before or after the hand-over); nor an unknown, too old or malformed
// attempt, nor one for another waiter.
func TestHandOverCountsAQuorumWithinTheLease(t *testing.T) {
	const lease = 200 * time.Millisecond
	t0 := time.Unix(1_800_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	announce := func(w *wakeup, node int, seq uint64) {
		w.announced(node, fmt.Appendf(nil, "%s %d", w.id, seq))
	}
	rung := func(w *wakeup) bool {
		select {
		case <-w.ch:
			return true
		default:
			return false
		}
	}

	t.Run("a quorum of one attempt, until its T1 plus the lease", func(t *testing.T) {
		w := newWakeup("wC.1", 5)
		s1 := w.sent(ms(0), "v1")
		s2 := w.sent(ms(50), "v2")
		announce(w, 0, s1)
		announce(w, 1, s1)
		announce(w, 2, s2)
		announce(w, 3, s2)
		if rung(w) {
			t.Fatal("rung by hand-overs of two attempts, two nodes each")
		}
		if _, _, _, ok := w.held(ms(60), lease); ok {
			t.Fatal("held with hand-overs of two values added together")
		}
		announce(w, 4, s2)
		if !rung(w) {
			t.Fatal("not rung by a quorum of hand-overs of one attempt")
		}
		v, until, tally, ok := w.held(ms(60), lease)
		if !ok || v != "v2" || !until.Equal(ms(50).Add(lease)) || tally.Granted != 3 {
			t.Fatalf("held = %v, %v, %d granted, %v; want v2, T1(2)+lease, 3", v, until, tally.Granted, ok)
		}
		if _, _, _, ok := w.held(ms(250), lease); ok {
			t.Fatal("held at the end of the lease")
		}
	})

	t.Run("an undo voids its attempt's hand-overs on its nodes", func(t *testing.T) {
		w := newWakeup("wC.2", 3)
		s1 := w.sent(ms(0), "v1")
		announce(w, 0, s1)
		w.undoing(0, s1) // the attempt failed: its undo goes to nodes 0 and 1
		w.undoing(1, s1)
		announce(w, 1, s1) // a hand-over that the undo passes on, or did
		announce(w, 2, s1)
		if _, _, _, ok := w.held(ms(20), lease); ok {
			t.Fatal("held with hand-overs that the attempt's undo passes on")
		}
		s2 := w.sent(ms(30), "v2") // the next attempt: its undo did not touch it
		announce(w, 0, s2)
		announce(w, 1, s2)
		if v, _, _, ok := w.held(ms(40), lease); !ok || v != "v2" {
			t.Fatalf("held = %v, %v; want attempt 2's hand-overs of nodes 0 and 1", v, ok)
		}
	})

	t.Run("unknown, too old, malformed or another's", func(t *testing.T) {
		w := newWakeup("wC.3", 3)
		first := w.sent(ms(0), "v")
		for i := 1; i <= seqWindow; i++ { // attempt 1 is forgotten
			w.sent(ms(i), "v")
		}
		last := w.seq()
		announce(w, 0, first)
		announce(w, 0, last+1) // never made
		announce(w, 0, 0)
		w.announced(1, fmt.Appendf(nil, "wC.33 %d", last)) // another waiter of the client
		w.announced(1, fmt.Appendf(nil, "wC.3 x"))
		w.announced(2, fmt.Appendf(nil, "wC.3 %d", last)) // counts
		if got := w.handedCount(); got != 1 {
			t.Fatalf("%d nodes counted, want 1 (node 2)", got)
		}
	})
}

// seq returns the number of the waiter's last numbered request.
func (w *wakeup) seq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.h.seq
}

// handedCount returns how many nodes' hand-overs the waiter knows of.
func (w *wakeup) handedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, g := range w.h.got {
		if g != 0 {
			n++
		}
	}
	return n
}
