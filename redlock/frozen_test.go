package redlock_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// A3, A6: while a node stays frozen, goroutines and connections do not pile
// up behind it: its requests fail at the node timeout and take its
// connection down with them, so what is in flight stays bounded instead of
// growing with the time the node stays frozen; once it wakes, everything
// drains back to one connection and one reader per node.
func TestNoPileUpBehindFrozenNode(t *testing.T) {
	c := redistest.New(t, 5)
	// Room for a loaded machine's noise: a healthy node missing this
	// deadline fails a call for reasons that are not this test's.
	const tau = 200 * time.Millisecond
	pools := newPools(t, c.Addrs(), pool.WithMaxActive(64))
	cl := newClientOn(t, pools, redlock.WithNodeTimeout(tau))
	// Warm up: every node's connection and reader are up.
	if l, err := cl.TryLock(t.Context(), "frozen-pileup"); err != nil {
		t.Fatal(err)
	} else if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	frozen := c.Nodes()[0]
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	// Three phases of the same load; the last must not need more than the
	// first (plus slack): nothing accumulates.
	var peaks [3]int
	var maxActive int
	for phase := range peaks {
		end := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(end) {
			l, err := cl.TryLock(t.Context(), "frozen-pileup")
			if err != nil {
				t.Fatalf("TryLock with one node frozen: %v", err)
			}
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatalf("Unlock with one node frozen: %v", err)
			}
			peaks[phase] = max(peaks[phase], runtime.NumGoroutine()-base)
			st, _ := pool.Stats(pools[0])
			maxActive = max(maxActive, st.ActiveCount)
		}
	}
	if peaks[2] > 2*peaks[0]+50 {
		t.Fatalf("goroutines above baseline per phase = %v: they pile up behind the frozen node", peaks)
	}
	if maxActive > 64 {
		t.Fatalf("%d connections open to the frozen node, above the pool's cap of 64", maxActive)
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines above baseline 3s after the node woke, want them gone", runtime.NumGoroutine()-base)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines above baseline per phase: %v; peak connections to the frozen node: %d", peaks, maxActive)
}

// cancelWhileFrozen freezes node 0 of c with its socket open, so that some
// of the waiters' round trips are under way, ends their context with
// cancel, fails the test if any of them got a lock anyway (naming it
// "<who> <index>: <what> after its context ended"), and thaws the node.
func cancelWhileFrozen(t *testing.T, c *redistest.Cluster, cancel context.CancelFunc, got []<-chan *redlock.Lock, who, what string) {
	t.Helper()
	frozen := c.Nodes()[0]
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for i, ch := range got {
		if l := <-ch; l != nil {
			t.Fatalf("%s %d: %s after its context ended", who, i, what)
		}
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
}
