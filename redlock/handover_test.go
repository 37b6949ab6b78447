package redlock_test

import (
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
