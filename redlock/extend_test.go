package redlock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// keysOutlastUntil fails the test unless a quorum of the nodes holds the
// key of name with a TTL that reaches at least to l.Until(): the holder's
// deadline is never later than what the nodes hold (E4).
func keysOutlastUntil(t *testing.T, c *redistest.Cluster, name string, l *redlock.Lock) {
	t.Helper()
	left := time.Until(l.Until())
	if left <= 0 || l.Err() != nil {
		return // nothing is promised any more
	}
	q := len(c.Nodes())/2 + 1
	reach := 0
	for _, n := range c.Nodes() {
		pttl, err := redis.Int64(n.Do("PTTL", redlock.LockKey(name)))
		// PTTL counts in whole ms, and the node's clock runs on while we ask.
		if err == nil && time.Duration(pttl+2)*time.Millisecond >= left {
			reach++
		}
	}
	if reach < q {
		t.Errorf("Until() is %v away but only %d nodes hold the key that long, want %d: the deadline is past the keys", left, reach, q)
	}
}

// E4: a failed Extend that asked for a shorter TTL must not leave Until()
// past the keys. N = 3: node C holds a dead attempt's value, so the lock
// stands on A and B; B is frozen. Extend(300ms): A grants, C refuses, B
// times out, so the call fails and Until() stays ~10 s away. Before E4
// became "Extend never shortens a key" (PEXPIRE GT), A had applied the
// 300 ms and a second client took A and C once C's stale key expired,
// while the first holder's Err() was nil and Until() seconds away.
func TestFailedShorterExtendLeavesUntilWithinTheKeys(t *testing.T) {
	c := redistest.New(t, 3)
	nodes := c.Nodes()
	const name = "extend-e4-shorter"
	opts := []redlock.Option{redlock.WithTTL(10 * time.Second), redlock.WithNodeTimeout(100 * time.Millisecond)}
	first, second := newClient(t, c, opts...), newClient(t, c, opts...)
	if _, err := nodes[2].Do("SET", redlock.LockKey(name), "dead-attempt", "PX", 1500); err != nil {
		t.Fatal(err)
	}
	l, err := first.TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock on A and B: %v", err)
	}
	defer l.Unlock(context.Background())
	settled(t, c, name, 3) // A, B ours; C the dead attempt's
	if err := nodes[1].Pause(); err != nil {
		t.Fatal(err)
	}
	before := l.Until()
	err = l.Extend(t.Context(), 300*time.Millisecond)
	if err := nodes[1].Resume(); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("Extend with C refusing and B frozen succeeded, want a failure")
	}
	if u := l.Until(); !u.Equal(before) {
		t.Fatalf("Until() after a failed Extend = %v, want it unchanged at %v", u, before)
	}
	// Wait for the dead attempt's key on C to expire: from then on, A and
	// C would grant a second client if A had taken the shorter TTL.
	deadline := time.Now().Add(10 * time.Second)
	for keyOn(t, nodes[2], name) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the dead attempt's key on C still there after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	keysOutlastUntil(t, c, name, l)
	if l2, err := second.TryLock(t.Context(), name); err == nil {
		l2.Unlock(t.Context())
		t.Fatalf("a second client took the lock while the first holds it (Err() = %v, Until() in %v)", l.Err(), time.Until(l.Until()))
	}
}

// E4: Extend never shortens a lock. A successful Extend with a shorter TTL
// leaves the nodes' later expiry and Until() where they were, so a late
// or repeated shorter request can never cut a holder short either.
func TestExtendNeverShortens(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "extend-e4-never-shorter"
	cl := newClient(t, c, redlock.WithTTL(10*time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	l, err := cl.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	before := l.Until()
	if err := l.Extend(t.Context(), 300*time.Millisecond); err != nil {
		t.Fatalf("Extend(300ms) = %v, want nil", err)
	}
	if u := l.Until(); !u.Equal(before) {
		t.Fatalf("Until() after Extend(300ms) = %v, want it kept at %v (the nodes keep the later expiry)", u, before)
	}
	settled(t, c, name, 3)
	keysOutlastUntil(t, c, name, l)
	// A longer one moves it.
	if err := l.Extend(t.Context(), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if u := l.Until(); !u.After(before) {
		t.Fatalf("Until() after Extend(20s) = %v, want later than %v", u, before)
	}
	keysOutlastUntil(t, c, name, l)
}

// E6: Extend with a context that already ended sends nothing and reports
// the context's error; Until() is unchanged and the lock still held.
func TestExtendWithEndedContextSendsNothing(t *testing.T) {
	c := redistest.New(t, 3)
	pools, sends := countingPools(t, c)
	cl := newClientOn(t, pools, redlock.WithTTL(10*time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "extend-e6")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	// Every node has its connection (and its scripts loaded) and answered:
	// nothing of the acquisition is written after this.
	settled(t, c, "extend-e6", 3)
	before, sent := l.Until(), sends.Load()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 50 { // the old round picked at random between replies and ctx.Done()
		err = l.Extend(ctx, 300*time.Millisecond)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Extend(cancelled ctx) = %v, want context.Canceled", err)
		}
	}
	if n := sends.Load() - sent; n != 0 {
		t.Fatalf("Extend(cancelled ctx) wrote %d requests, want none", n)
	}
	if u := l.Until(); !u.Equal(before) || l.Err() != nil {
		t.Fatalf("after Extend(cancelled ctx): Until() = %v (want %v), Err() = %v (want nil)", u, before, l.Err())
	}
}
