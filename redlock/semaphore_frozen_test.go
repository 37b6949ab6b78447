package redlock_test

import (
	"context"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// S3, S4, L4, L9: waiters of two clients (two callers each) wait for a full
// semaphore; their context ends while a node is frozen with its socket
// open, so that some of their round trips are under way: no Acquire
// returns a permit, none of them is left waiting in its client or in the
// line of any node once the node thaws, and once the holders give their
// permits back a fresh client takes every permit.
func TestSemaphoreWaitersEndWithTheirContextWhileANodeIsFrozen(t *testing.T) {
	c := redistest.New(t, 3)
	const name, permits, perClient = "sem-frozen-ctx-end", 2, 2
	holder := newSemaphore(t, c, name, permits)
	held := holdAll(t, holder, permits)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var clients []*redlock.Client
	var got []<-chan *redlock.Lock
	for range 2 {
		cl := newClient(t, c, redlock.WithNodeTimeout(250*time.Millisecond), redlock.WithTries(1<<20))
		s, err := cl.Semaphore(name, permits)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		for range perClient {
			got = append(got, waitForPermit(ctx, s))
		}
	}
	for _, cl := range clients {
		waitFor(t, "every caller waits in its client", func() bool { return redlock.SemaphoreWaiting(cl, name) == perClient })
	}
	inLineAt(t, c, redlock.SemaphoreLineKey(name), len(clients))
	cancelWhileFrozen(t, c, cancel, got, "waiter", "Acquire returned a permit")
	for i, cl := range clients {
		if n := redlock.SemaphoreWaiting(cl, name); n != 0 {
			t.Fatalf("client %d: %d callers still wait after their context ended, want 0", i, n)
		}
	}
	inLineAt(t, c, redlock.SemaphoreLineKey(name), 0)
	unlockAll(t, held...)
	fresh := newSemaphore(t, c, name, permits)
	for i := range permits {
		l, err := fresh.TryAcquire(t.Context())
		if err != nil {
			t.Fatalf("permit %d after the waiters gave up and the holders gave back: %v, want every permit free", i, err)
		}
		defer l.Unlock(t.Context())
	}
}
