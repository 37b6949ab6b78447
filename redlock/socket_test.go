package redlock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// C1, A6, A10: no caller ever blocks on one node's socket. One of three
// nodes is frozen with its socket open; a lone caller makes TryLock+Unlock
// after TryLock+Unlock with 1 KB names, so the requests to the frozen node
// fill its socket's buffers. Were a caller to write them itself, its write
// would block once the buffers are full (up to the pool's write timeout,
// set long here to make that plain), the healthy nodes' requests would
// miss their deadlines, and calls with a healthy majority would fail.
func TestFrozenNodeSocketNeverBlocksCaller(t *testing.T) {
	c := redistest.New(t, 3)
	// A node timeout with room for a loaded machine's noise: the failure
	// this test is about does not depend on it (a blocked write lasts the
	// pool's write timeout, set far longer here).
	const tau = 200 * time.Millisecond
	pools := newPools(t, c.Addrs(), pool.WithWriteTimeout(30*time.Second))
	cl := newClientOn(t, pools, redlock.WithNodeTimeout(tau))
	name := strings.Repeat("n", 1024)
	if l, err := cl.TryLock(t.Context(), name); err != nil { // connections up
		t.Fatal(err)
	} else {
		l.Unlock(t.Context())
	}
	if err := c.Nodes()[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer c.Nodes()[0].Resume()
	calls := 20000
	if testing.Short() {
		calls = 2000
	}
	var failed int
	var slowest time.Duration
	var firstErr error
	for range calls {
		start := time.Now()
		l, err := cl.TryLock(t.Context(), name)
		if err == nil {
			err = l.Unlock(t.Context())
		}
		slowest = max(slowest, time.Since(start))
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	t.Logf("%d TryLock+Unlock with one of 3 nodes frozen: %d failed, slowest %v", calls, failed, slowest)
	if failed > 0 {
		t.Fatalf("%d of %d calls failed with a healthy majority; first: %v", failed, calls, firstErr)
	}
	// Generous: a blocked write would show as seconds (the write timeout).
	if slowest > 10*tau {
		t.Fatalf("slowest TryLock+Unlock took %v, want a few node timeouts (%v): a caller blocked", slowest, tau)
	}
}

// C1, C3: a client of one node reads its own replies when its context
// cannot end (pipe.Call), never beyond the node timeout; with a context
// that can end, the call still ends with the context, not at the node
// timeout. The node is frozen with its socket open.
func TestOneNodeReadsItsOwnReplyWithinItsDeadline(t *testing.T) {
	c := redistest.New(t, 1)
	const tau = 400 * time.Millisecond
	cl := newClient(t, c, redlock.WithNodeTimeout(tau))
	bg := context.Background()
	for range 3 { // connection up; later calls read their own replies
		l, err := cl.TryLock(bg, "one")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(bg); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Nodes()[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer c.Nodes()[0].Resume()
	var err error
	d := timed(func() { _, err = cl.TryLock(bg, "one") })
	if !errors.Is(err, redlock.ErrNodeTimeout) {
		t.Fatalf("TryLock on a frozen node = %v, want ErrNodeTimeout", err)
	}
	if d < tau-50*time.Millisecond || d > 3*tau {
		t.Fatalf("TryLock on a frozen node took %v, want about the node timeout %v", d, tau)
	}
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	d = timed(func() { _, err = cl.TryLock(ctx, "one") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TryLock with a 50ms context on a frozen node = %v, want DeadlineExceeded", err)
	}
	if d > tau/2 {
		t.Fatalf("TryLock with a 50ms context took %v: it waited for the node timeout %v", d, tau)
	}
	c.Nodes()[0].Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := cl.TryLock(bg, "one-after")
		if err == nil {
			if err := l.Unlock(bg); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TryLock after the node woke: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
