package redlock

import (
	"fmt"
	"testing"
	"time"
)

// L12: what a waiter counts of the hand-overs announced to it, on the
// fake clock: a quorum of nodes, each holding the key for the lease past
// the T1 of the request it named; a hand-over named by a request before an
// undo that went to that node does not count (the undo passed the key on);
// nor one named by an unknown, too old or repeated request, nor one for
// another waiter.
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

	t.Run("a quorum, until the shortest of the quorum that holds longest", func(t *testing.T) {
		w := newWakeup("wC.1", 5)
		s1 := w.sent(ms(0))
		s2 := w.sent(ms(50))
		announce(w, 0, s1)
		announce(w, 1, s2)
		if rung(w) {
			t.Fatal("rung by 2 hand-overs of 5 nodes")
		}
		if _, _, ok := w.held(ms(60), lease); ok {
			t.Fatal("held with 2 hand-overs of 5 nodes")
		}
		announce(w, 2, s2)
		if !rung(w) {
			t.Fatal("not rung by a quorum of hand-overs")
		}
		until, tally, ok := w.held(ms(60), lease)
		if !ok || !until.Equal(ms(0).Add(lease)) || tally.Granted != 3 {
			t.Fatalf("held = %v, %v granted, %v; want until T1(1)+lease, 3", until, tally.Granted, ok)
		}
		announce(w, 3, s2) // a fourth: the quorum holding longest is seq 2's
		if until, _, _ := w.held(ms(60), lease); !until.Equal(ms(50).Add(lease)) {
			t.Fatalf("until %v with three nodes after request 2, want T1(2)+lease", until)
		}
		if _, _, ok := w.held(ms(250), lease); ok {
			t.Fatal("held at the end of the lease")
		}
	})

	t.Run("an undo voids the hand-overs before it on its nodes", func(t *testing.T) {
		w := newWakeup("wC.2", 3)
		s1 := w.sent(ms(0))
		announce(w, 0, s1)
		u := w.sent(ms(10)) // the attempt failed: its undo goes to node 0 and 1
		w.undoing(0, u)
		w.undoing(1, u)
		announce(w, 1, s1) // a hand-over that the undo will pass on
		announce(w, 2, s1)
		if _, _, ok := w.held(ms(20), lease); ok {
			t.Fatal("held with hand-overs that an undo passes on")
		}
		announce(w, 1, u) // node 1 handed it over again, after the undo
		until, _, ok := w.held(ms(20), lease)
		if !ok || !until.Equal(ms(0).Add(lease)) {
			t.Fatalf("held = %v, %v; want the hand-overs of nodes 1 (after the undo) and 2", until, ok)
		}
	})

	t.Run("unknown, too old, repeated or another's", func(t *testing.T) {
		w := newWakeup("wC.3", 3)
		first := w.sent(ms(0))
		for i := 1; i <= seqWindow; i++ { // request 1's T1 is overwritten
			w.sent(ms(i))
		}
		last := w.seq()
		announce(w, 0, first)  // out of the window of T1s it keeps
		announce(w, 0, last+1) // never sent
		announce(w, 0, 0)
		w.announced(1, fmt.Appendf(nil, "wC.33 %d", last)) // another waiter of the client
		w.announced(1, fmt.Appendf(nil, "wC.3 x"))
		w.announced(2, fmt.Appendf(nil, "wC.3 %d", last)) // counts
		if got := w.handedCount(); got != 1 {
			t.Fatalf("%d nodes counted, want 1 (node 2)", got)
		}
		w.announced(2, fmt.Appendf(nil, "wC.3 %d", last-1)) // older than node 2's: kept the newer
		if got := w.h.got[2]; got != last {
			t.Fatalf("node 2's hand-over after request %d, want %d", got, last)
		}
	})
}

// seq returns the number of the waiter's last numbered request.
func (w *wakeup) seq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.h.seq
}

// handedCount returns how many nodes' hand-overs the waiter counts.
func (w *wakeup) handedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.h.n
}
