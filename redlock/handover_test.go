package redlock_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// L12: a release hands the lock over to the first waiter in line, which
// registered its value: the waiter's Lock returns with no attempt after
// the release, the waiter claims the lock for its TTL, which moves Until,
// and leaves nothing in the line. A fenced waiter is reserved for instead
// (its token needs its own attempt, F1), and served as before.
func TestReleaseHandsOverToTheFirstWaiter(t *testing.T) {
	for _, fenced := range []bool{false, true} {
		name := map[bool]string{false: "handover", true: "handover-fenced"}[fenced]
		t.Run(name, func(t *testing.T) {
			c := redistest.New(t, 5)
			const ttl = 10 * time.Second
			opts := []redlock.Option{redlock.WithTTL(ttl), redlock.WithTries(1 << 20)}
			if fenced {
				opts = append(opts, redlock.WithFencing())
			}
			holder, waiter := newClient(t, c), newClient(t, c, opts...)
			l, got := waitBehind(t, c, holder, waiter, name, nil)
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
			w := <-got
			if w == nil {
				t.Fatal("the waiter's Lock failed")
			}
			want := int64(1)
			if fenced {
				want = 0
			}
			if n := redlock.HandOvers(waiter); n != want {
				t.Fatalf("%d locks handed over to the waiter, want %d", n, want)
			}
			waitUntil(t, 10*time.Second, "the hand-over is claimed for the TTL", func() bool {
				return time.Until(w.Until()) > ttl/2
			})
			if n := redlock.Claims(waiter); n != want {
				t.Fatalf("%d claims sent, want %d: the lock is held past claimAfter", n, want)
			}
			inLine(t, c, name, 0)
			for _, n := range c.Nodes() {
				if v, err := n.Do("EXISTS", redlock.GrantsKey(name)); err != nil || v != int64(0) {
					t.Fatalf("%s: grants key left behind (%v, %v)", n.Addr(), v, err)
				}
			}
			if err := w.Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// L12: a hand-over lasts the lease the waiter registered with its attempt,
// whoever releases: the releaser's own node timeout (here 50ms, a
// reservation of 200ms) does not cut short a lease the waiter counts on
// (a review of L12 found the release's reservation time used, which gave
// a waiter with a longer node timeout an Until() past the keys).
func TestHandOverLastsTheWaitersLease(t *testing.T) {
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	const name = "handover-lease"
	holder := newClient(t, c, redlock.WithNodeTimeout(50*time.Millisecond), redlock.WithTries(1<<20))
	l, err := holder.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	// A waiter that registered an attempt with a lease of 10s, and stopped.
	if _, err := redlock.LineTake(n.Do, name, "wlease.x", 1, 10*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	v, err := redis.String(n.Do("GET", redlock.LockKey(name)))
	if err != nil || v != "dead-waiter-value" {
		t.Fatalf("after the release the key holds %q (%v), want the waiter's value handed over", v, err)
	}
	if pttl, err := redis.Int64(n.Do("PTTL", redlock.LockKey(name))); err != nil || pttl < 5000 {
		t.Fatalf("the hand-over lasts %dms (%v), want the waiter's lease of 10s", pttl, err)
	}
}

// L12, A8: a node that is down (no connection can be made) never got the
// attempt, so it needs no undo, and the attempt's hand-overs by the others
// still count: with one node of three down, the waiter is handed the lock
// over (a review found every attempt undone there, and the hand-over's
// round trip lost whenever a node was down).
func TestHandOverWithANodeDown(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "handover-node-down"
	if err := c.Nodes()[2].Kill(); err != nil {
		t.Fatal(err)
	}
	// A node timeout of 5s and a retry delay of a minute: the waiter makes
	// no new attempt (a refresh, or a retry) between its attempt's
	// settling and the release (one did under a CPU hog, with the default
	// delay of 50-250ms, and took the keys itself).
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(5 * time.Second), redlock.WithRetryDelay(func(int) time.Duration { return time.Minute })}
	holder, waiter := newClient(t, c, opts...), newClient(t, c, opts...)
	l, err := holder.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	got := waitForLock(t.Context(), waiter, name)
	// Its attempt in line answered by every node (refused by two, never
	// sent to the third), and no undo sent anywhere.
	waitUntil(t, 10*time.Second, "the waiter's attempt in line settled, and it listens", func() bool {
		for _, n := range c.Nodes()[:2] { // its channel subscribed: a hand-over announced reaches it (R5)
			if chans, err := redis.Strings(n.Do("PUBSUB", "CHANNELS", redlock.LockKey(name)+":released:*")); err != nil || len(chans) != 1 {
				return false
			}
		}
		return redlock.Settled(waiter, name)
	})
	defer handOver(t, l, got).Unlock(t.Context())
	if n := redlock.HandOvers(waiter); n != 1 {
		t.Fatalf("%d locks handed over with a node down, want 1", n)
	}
}

// L12: a claim that finds the key free on a node where waiters still stand
// in line hands it over there to the first of them, as a release does.
// Otherwise a node whose key lapsed while others waited (a hand-over's
// lease that ran out, a holder's TTL) stays free with a line for as long
// as the name is contended: every waiter is handed the lock by the other
// nodes, claims it and leaves the line there, and none ever takes that
// node (the instances bench ran with one or two of five nodes so, for
// whole runs).
func TestClaimHandsAFreeKeyOver(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "claim-free-key"
	// No new attempt (a refresh, or a retry) while the test runs: the
	// waiters take nothing themselves, they are handed the lock.
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(5 * time.Second), redlock.WithRetryDelay(func(int) time.Duration { return time.Minute })}
	holder, x, y := newClient(t, c, opts...), newClient(t, c, opts...), newClient(t, c, opts...)
	l, gotX := waitBehind(t, c, holder, x, name, nil)
	gotY := waitForLock(t.Context(), y, name)
	inLine(t, c, name, 2)
	ownChannels(t, c, name, 2)
	waitUntil(t, 10*time.Second, "both waiters' attempts in line settled", func() bool {
		return redlock.Settled(x, name) && redlock.Settled(y, name)
	})
	lapsed := c.Nodes()[1]
	if _, err := lapsed.Do("DEL", redlock.LockKey(name)); err != nil {
		t.Fatal(err)
	}
	xl := handOver(t, l, gotX) // by the two other nodes, a quorum
	// x's claim takes it out of the line on every node, and on the lapsed
	// node hands the key over to y in the same step.
	inLine(t, c, name, 1)
	if v, err := lapsed.Do("EXISTS", redlock.LockKey(name)); err != nil || v != int64(1) {
		t.Fatalf("after x's claim the key is free on %s (%v, %v), want it handed over to y, first in line there", lapsed.Addr(), v, err)
	}
	yl := handOver(t, xl, gotY)
	defer yl.Unlock(t.Context())
	heldEverywhere(t, c, name)
	if n := redlock.HandOvers(y); n != 1 {
		t.Fatalf("%d locks handed over to y, want 1", n)
	}
}

// L12, L2: with many instances (one client each) taking and releasing one
// name, every node keeps taking part: each grant, hand-over or reservation
// is a SET on the node, and no node makes far fewer than the others. (A
// key that lapsed on a node while others waited left that node free with a
// line for good: the instances bench ran whole runs on three or four of
// five nodes, one fault from a stall.)
func TestEveryNodeKeepsServingUnderContention(t *testing.T) {
	c := redistest.New(t, 5)
	const name, instances, rounds = "every-node-serves", 8, 40
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(time.Second)}
	clients := make([]*redlock.Client, instances)
	for i := range clients {
		clients[i] = newClient(t, c, opts...)
	}
	for _, n := range c.Nodes() {
		if _, err := n.Do("CONFIG", "RESETSTAT"); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range concurrently(instances, func(i int) error {
		for range rounds {
			l, err := clients[i].Lock(t.Context(), name)
			if err != nil {
				return err
			}
			if err := l.Unlock(t.Context()); err != nil {
				return err
			}
		}
		return nil
	}) {
		t.Fatalf("instance: %v", err)
	}
	freeEverywhere(t, c, name)
	sets := make([]int, len(c.Nodes()))
	for i, n := range c.Nodes() {
		info, err := redis.String(n.Do("INFO", "commandstats"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(info, "cmdstat_set:calls=")
		calls, _, _ := strings.Cut(rest, ",")
		if sets[i], err = strconv.Atoi(calls); err != nil {
			t.Fatalf("%s: no SET count in INFO commandstats (%v)", n.Addr(), err)
		}
	}
	if lo, hi := slices.Min(sets), slices.Max(sets); lo < hi/2 {
		t.Fatalf("SETs per node %v over %d acquisitions: a node sat out", sets, instances*rounds)
	}
	t.Logf("SETs per node %v over %d acquisitions", sets, instances*rounds)
}

// handOverScript does on one node what a release does for a waiter first in
// line (L12): the key becomes the attempt the waiter registered, for its
// lease, announced on its client's channel; with ARGV[3] '1', another lock
// then takes the key in the same step, so that the waiter's claim finds it
// gone there.
const handOverScript = `
local g = redis.call('HGET', KEYS[2], ARGV[1])
local seq, lease, v = string.match(g, '^(%d+):(%d+):(.*)$')
redis.call('SET', KEYS[1], v, 'PX', lease)
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. seq)
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], 'another-lock', 'PX', 600000)
end
return seq`

// L12: a claim that fails (a quorum no longer holds the value handed over)
// leaves Until() at the hand-over's, and the lock ends then and is
// released: the node where the claim did apply keeps the key for the TTL
// otherwise.
func TestFailedClaimReleasesAtTheHandOversEnd(t *testing.T) {
	c := redistest.New(t, 3)
	const name, tau, ttl = "failed-claim", time.Second, 10 * time.Minute
	holder := newClient(t, c)
	// No new attempt while the test runs (a refresh comes every tau, a
	// retry after a minute): the hand-over names the waiter's only one.
	waiter := newClient(t, c, redlock.WithTries(1<<20), redlock.WithTTL(ttl), redlock.WithNodeTimeout(tau),
		redlock.WithRetryDelay(func(int) time.Duration { return time.Minute }))
	_, got := waitBehind(t, c, holder, waiter, name, nil)
	ownChannels(t, c, name, 1)
	waitUntil(t, 10*time.Second, "the waiter's attempt in line settled", func() bool { return redlock.Settled(waiter, name) })
	var id string
	for k := range inLine(t, c, name, 1) {
		id = k
	}
	cid, _, _ := strings.Cut(id, ".")
	channel := redlock.LockKey(name) + ":released:" + cid
	// Handed over by nodes 0 and 1, a quorum; node 1 is taken by another
	// lock at once, node 2 still has the holder's: the claim holds on node 0
	// only.
	for i, n := range c.Nodes()[:2] {
		if _, err := n.Do("EVAL", handOverScript, 2, redlock.LockKey(name), redlock.GrantsKey(name), id, channel, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	l := <-got
	if l == nil {
		t.Fatal("the waiter's Lock failed")
	}
	if left := time.Until(l.Until()); left > 4*tau {
		t.Fatalf("Until() %v away after a hand-over, want within its lease of %v", left, 4*tau)
	}
	claimed := c.Nodes()[0]
	waitUntil(t, 10*time.Second, "the claim made the key last its TTL on node 0", func() bool {
		pttl, err := redis.Int64(claimed.Do("PTTL", redlock.LockKey(name)))
		return err == nil && pttl > int64(time.Minute/time.Millisecond)
	})
	if left := time.Until(l.Until()); left > 4*tau {
		t.Fatalf("Until() %v away after a claim that failed, want the hand-over's (within %v)", left, 4*tau)
	}
	// The lock ends at the hand-over's Until, and is released there, though
	// nobody watches it and the TTL is ten minutes.
	waitUntil(t, 30*time.Second, "the key released on node 0 at the hand-over's end", func() bool {
		v, err := claimed.Do("EXISTS", redlock.LockKey(name))
		return err == nil && v == int64(0)
	})
	if err := l.Err(); !errors.Is(err, redlock.ErrLockLost) {
		t.Fatalf("Err() = %v after a failed claim's end, want ErrLockLost", err)
	}
	if v, err := redis.String(c.Nodes()[1].Do("GET", redlock.LockKey(name))); err != nil || v != "another-lock" {
		t.Fatalf("node 1's key is %q (%v): another lock's key was touched", v, err)
	}
}

// L12, A8: an undo that comes late never hands the lock to the undoing
// waiter itself. A waiter's attempt granted on too few nodes is undone
// there once they answered; its next attempt may have reached such a node
// first, been refused (the key held the earlier attempt's value) and
// registered, and have won the lock elsewhere and been released already.
// The undo then found the waiter first in line and handed it the later
// attempt's value: nobody claimed or released that copy, and the node sat
// out for the lease (found in TestEveryNodeKeepsServingUnderContention's
// runs). The undo reserves for the waiter instead: a reservation its next
// attempt takes, and its leave passes on.
func TestLateUndoNeverHandsTheLockToItsWaiter(t *testing.T) {
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	const name, lease = "undo-not-to-itself", 10 * time.Second
	do := n.Do
	// wq's attempt 2 is granted here (free key, first in line), then wb
	// joins, then wq's attempt 3 comes, refused (the key holds attempt 2).
	grantedThenRefused(t, n, name)
	// Attempt 3 won elsewhere and was released (nothing here: the key is
	// not its); then attempt 2's undo, then wq's leave.
	if _, err := redlock.Release(do, name, "attempt-3", "wq.1", time.Second); err != nil {
		t.Fatal(err)
	}
	if r, err := redis.Int(redlock.LineUndo(do, name, "wq.1", "attempt-2", 1, lease, time.Second)); err != nil || r != 1 {
		t.Fatalf("undo of attempt 2: %d, %v; want undone", r, err)
	}
	if v, err := redis.String(do("GET", redlock.LockKey(name))); err != nil || v == "attempt-3" {
		t.Fatalf("after the undo the key is %q (%v): handed to the undoing waiter's own attempt", v, err)
	}
	if _, err := redlock.LineLeave(do, name, "wq.1", "", time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := redis.String(do("GET", redlock.LockKey(name))); err != nil || v != "value-of-wb" {
		t.Fatalf("after wq's leave the key is %q (%v), want handed over to wb", v, err)
	}
}

// L12, L4: the release of a lock taken in line takes its waiter out of
// the line first, on the nodes its leave has not reached yet (it is sent
// once every node answered; Unlock goes at once). Otherwise the waiter,
// still first in line there with its attempt registered, was handed that
// attempt by another lock's release come late, either before its own
// release (which then found its holder first in line and handed the key
// back to it) or after: nobody claimed or released that copy, and the
// node sat out for the lease (both found in
// TestEveryNodeKeepsServingUnderContention's runs). Either way the key
// goes to wb, next in line.
func TestReleaseTakesItsWaiterOutOfTheLine(t *testing.T) {
	type release struct {
		value, waiter string
		want          int // 1: released
	}
	for _, tc := range []struct {
		name  string
		steps []release
	}{
		// The late release hands the key to wa's attempt, which wa holds
		// as its lock (granted on the other nodes); then wa's Unlock.
		{"handed to its holder, then released", []release{{"a-late-lock", "", 1}, {"value-of-wa.1", "wa.1", 1}}},
		// wa's Unlock first (the key is not its here), then the late one.
		{"released, then handed over", []release{{"value-of-wa.1", "wa.1", 0}, {"a-late-lock", "", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := redistest.New(t, 1).Nodes()[0]
			const name = "release-takes-its-waiter-out"
			heldWithTwoInLine(t, n, name, "a-late-lock", "wa.1", "wb.1")
			for _, r := range tc.steps {
				if got, err := redis.Int(redlock.Release(n.Do, name, r.value, r.waiter, time.Second)); err != nil || got != r.want {
					t.Fatalf("release of %s answered %d (%v), want %d", r.value, got, err, r.want)
				}
			}
			if v, err := redis.String(n.Do("GET", redlock.LockKey(name))); err != nil || v != "value-of-wb.1" {
				t.Fatalf("the key is %q (%v), want handed over to wb, the next in line", v, err)
			}
			if line, err := redis.StringMap(n.Do("HGETALL", redlock.LineKey(name))); err != nil || len(line) != 1 || line["wb.1"] == "" {
				t.Fatalf("line %v (%v), want wb only", line, err)
			}
		})
	}
}

// L12, A8: the release of a lock taken in line passes on a reservation for
// its own waiter: an undo of an earlier attempt that comes after the
// waiter's leave (on a connection replaced after a timeout, say) puts the
// finished waiter back in line and reserves the key for it, and the
// release is the last request of that waiter to come (found by a review).
func TestReleasePassesOnItsWaitersReservation(t *testing.T) {
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	do := n.Do
	const name, lease = "release-passes-own-reservation", 10 * time.Second
	grantedThenRefused(t, n, name)
	// Attempt 3 won elsewhere; its leave, the late undo of attempt 2, and
	// the release of attempt 3.
	if _, err := redlock.LineLeave(do, name, "wq.1", "", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := redlock.LineUndo(do, name, "wq.1", "attempt-2", 1, lease, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := redlock.Release(do, name, "attempt-3", "wq.1", time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := redis.String(do("GET", redlock.LockKey(name))); err != nil || v != "value-of-wb" {
		t.Fatalf("after wq's release the key is %q (%v), want handed over to wb", v, err)
	}
	if line, err := redis.StringMap(do("HGETALL", redlock.LineKey(name))); err != nil || len(line) != 1 || line["wb.1"] == "" {
		t.Fatalf("line %v (%v) after wq's release, want wb only", line, err)
	}
}

// heldWithTwoInLine sets name's key on n to holder, and has waiters a and
// b (in that order) attempt in line there, each registering its attempt
// "value-of-<id>" for a hand-over (L12), refused.
func heldWithTwoInLine(t *testing.T, n *redistest.Node, name, holder, a, b string) {
	t.Helper()
	if _, err := n.Do("SET", redlock.LockKey(name), holder, "PX", 60000); err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{a, b} {
		if r, err := redis.Int(redlock.LineTakeWith(n.Do, name, w, "value-of-"+w, int64(i+1), 10*time.Second, 1)); err != nil || r != 0 {
			t.Fatalf("%s's attempt: %d, %v; want refused", w, r, err)
		}
	}
}

// grantedThenRefused runs, on n, waiter wq's attempt 2 with value
// "attempt-2", granted (a free key, first in line), then wb's attempt
// ("value-of-wb"), and wq's attempt 3 ("attempt-3"), both refused (the key
// holds attempt 2), each registering its attempt (L12).
func grantedThenRefused(t *testing.T, n *redistest.Node, name string) {
	t.Helper()
	for _, a := range []struct {
		id, value string
		ticket    int64
		seq       uint64
		want      int
	}{{"wq.1", "attempt-2", 1, 2, 1}, {"wb.1", "value-of-wb", 2, 1, 0}, {"wq.1", "attempt-3", 1, 3, 0}} {
		if r, err := redis.Int(redlock.LineTakeWith(n.Do, name, a.id, a.value, a.ticket, 10*time.Second, a.seq)); err != nil || r != a.want {
			t.Fatalf("%s's attempt %d: %d, %v; want %d", a.id, a.seq, r, err, a.want)
		}
	}
}

// L12: a lock handed over that ends before its claim is sent, lost or past
// its deadline, is not claimed (the claim would keep its keys for a TTL
// wherever they still hold its value), and is released instead, which
// takes its waiter out of the line (found by a review).
func TestLostHandOverIsNotClaimed(t *testing.T) {
	const name = "lost-before-its-claim"
	n, waiter, w := handedOverOnOneNode(t, name, nil)
	// The key is lost: another lock has it now.
	if _, err := n.Do("SET", redlock.LockKey(name), "someone-else", "PX", 60000); err != nil {
		t.Fatal(err)
	}
	if err := w.Extend(t.Context(), 30*time.Second); err == nil || w.Err() == nil {
		t.Fatalf("Extend of a lost lock: %v, Err() %v; want it lost", err, w.Err())
	}
	waitUntil(t, 10*time.Second, "the claim's timer ran", func() bool { return redlock.ClaimDecided(w) })
	if k := redlock.Claims(waiter); k != 0 {
		t.Fatalf("%d claims sent for a lock lost before claimAfter, want 0", k)
	}
	waitUntil(t, 10*time.Second, "the waiter out of the line", func() bool {
		line, err := redis.Int(n.Do("HLEN", redlock.LineKey(name)))
		return err == nil && line == 0
	})
	if v := keyOn(t, n, name); v != "someone-else" {
		t.Fatalf("the key is %q, want the other lock's untouched", v)
	}
}

// L12, L9: a lock handed over while the client has another waiter for the
// name is claimed at once, not after claimAfter: the claim puts that
// waiter in line in the first one's place, and it must not wait out of
// line meanwhile.
func TestClaimAtOnceWithTheClientsNextWaiter(t *testing.T) {
	c := redistest.New(t, 1)
	const name = "claim-with-successor"
	holder := newClient(t, c)
	// claimAfter is a second: a claim sent before Lock returns is the
	// immediate one.
	waiter := newClient(t, c, redlock.WithNodeTimeout(5*time.Second))
	l, first := waitBehind(t, c, holder, waiter, name, nil)
	second := waitForLock(t.Context(), waiter, name)
	waitUntil(t, 10*time.Second, "both of the client's waiters wait, the first settled", func() bool {
		return redlock.Waiting(waiter, name) == 2 && redlock.Settled(waiter, name)
	})
	ownChannels(t, c, name, 1)
	w := handOver(t, l, first)
	if n := redlock.Claims(waiter); n != 1 {
		t.Fatalf("%d claims sent when Lock returned, want 1: the next waiter takes the first's place by it", n)
	}
	inLine(t, c, name, 1) // the second, put in by the claim
	defer handOver(t, w, second).Unlock(t.Context())
}
