package redlock

import (
	"fmt"
	"testing"
	"time"
)

// L12: what a waiter counts of the hand-overs announced to it, on the
// fake clock: a quorum of nodes that handed over its latest attempt, once
// settled (every node answered that attempt and no undo of it went
// anywhere: Client.undo settles only then, which
// TestLineModelFollowsTheHandOver drives), each holding
// the key for the lease past the attempt's T1; never an older attempt (a
// newer one takes its key as its own), never an attempt whose undo went
// anywhere (a late undo would pass the key on), nor an announcement for
// another waiter or a malformed one. A quorum of hand-overs rings the
// waiter even when they do not count: its next attempt takes them.
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
	held := func(w *wakeup, at time.Time) (any, time.Time, bool) {
		v, until, _, ok := w.held(at, lease)
		return v, until, ok
	}

	t.Run("a quorum of the settled latest attempt, until its T1 plus the lease", func(t *testing.T) {
		w := newWakeup("wC.1", 5)
		s1 := w.sent(ms(0), "v1")
		w.settle(s1)
		announce(w, 0, s1)
		announce(w, 1, s1)
		if _, _, ok := held(w, ms(10)); ok || rung(w) {
			t.Fatal("held or rung with 2 hand-overs of 5 nodes")
		}
		announce(w, 2, s1)
		if !rung(w) {
			t.Fatal("not rung by a quorum of hand-overs")
		}
		v, until, tally, ok := w.held(ms(10), lease)
		if !ok || v != "v1" || !until.Equal(ms(0).Add(lease)) || tally.Granted != 3 {
			t.Fatalf("held = %v, %v, %d granted, %v; want v1, T1+lease, 3", v, until, tally.Granted, ok)
		}
		if _, _, ok := held(w, ms(200)); ok {
			t.Fatal("held at the end of the lease")
		}
	})

	t.Run("not before every node answered the attempt", func(t *testing.T) {
		w := newWakeup("wC.2", 3)
		s1 := w.sent(ms(0), "v1")
		announce(w, 0, s1)
		announce(w, 1, s1)
		if !rung(w) {
			t.Fatal("not rung by a quorum of hand-overs: its next attempt takes them")
		}
		if _, _, ok := held(w, ms(10)); ok {
			t.Fatal("held before every node answered the attempt")
		}
		w.settle(s1)
		if v, _, ok := held(w, ms(10)); !ok || v != "v1" {
			t.Fatalf("held = %v, %v once settled; want v1", v, ok)
		}
	})

	t.Run("only the latest attempt", func(t *testing.T) {
		w := newWakeup("wC.4", 3)
		s1 := w.sent(ms(0), "v1")
		w.settle(s1)
		announce(w, 0, s1)
		s2 := w.sent(ms(50), "v2") // its take may take s1's keys as its own
		announce(w, 1, s1)
		w.settle(s1) // late: s1 is no longer the latest
		if _, _, ok := held(w, ms(60)); ok {
			t.Fatal("held with hand-overs of an attempt before the latest")
		}
		w.settle(s2)
		announce(w, 0, s2)
		announce(w, 2, s2)
		if v, until, ok := held(w, ms(60)); !ok || v != "v2" || !until.Equal(ms(50).Add(lease)) {
			t.Fatalf("held = %v, %v, %v; want v2 until T1(2)+lease", v, until, ok)
		}
	})

	t.Run("reservations and hand-overs together ring", func(t *testing.T) {
		// A release that crossed the attempt: two nodes reserved the lock
		// for the waiter, two handed the attempt over (its undo went to
		// the first two: the hand-overs do not count). Neither kind alone
		// is a quorum, both together are: the next attempt takes them all
		// (found by the hot-key benchmark as waits of a whole refresh
		// interval, tau, with nobody ringing the waiter).
		w := newWakeup("wC.6", 5)
		w.reset()
		s1 := w.sent(ms(0), "v1") // never settled: its undo went out
		w.announced(1, []byte("wC.6"))
		announce(w, 3, s1)
		if rung(w) {
			t.Fatal("rung by 2 of 5 nodes")
		}
		w.announced(2, []byte("wC.6"))
		announce(w, 4, s1)
		if !rung(w) {
			t.Fatal("not rung with 2 reservations and 2 hand-overs of 5 nodes")
		}
	})

	t.Run("another waiter's, or malformed", func(t *testing.T) {
		w := newWakeup("wC.5", 3)
		s1 := w.sent(ms(0), "v1")
		w.settle(s1)
		w.announced(0, fmt.Appendf(nil, "wC.55 %d", s1)) // another waiter of the client
		w.announced(1, fmt.Appendf(nil, "wC.5 x"))
		w.announced(1, fmt.Appendf(nil, "wC.5 %d", s1)) // counts
		if got := w.handedCount(); got != 1 {
			t.Fatalf("%d nodes counted, want 1 (node 1)", got)
		}
	})
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
