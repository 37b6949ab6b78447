package redlock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// Messages say what happened, once. Nodes the call did not wait for (A6)
// are "not awaited", never counted as failing.
func TestMessageSaysNotAwaited(t *testing.T) {
	c := redistest.New(t, 5)
	holder, other := newClient(t, c), newClient(t, c)
	l, err := holder.TryLock(t.Context(), "msg-awaited")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	settled(t, c, "msg-awaited", 5)
	// Refusals decide it at 3 of 5: up to two nodes are left unawaited.
	for range 20 {
		_, err = other.TryLock(t.Context(), "msg-awaited")
		msg := err.Error()
		if strings.Contains(msg, "no answer") {
			t.Fatalf("TryLock = %q: healthy nodes reported as not answering", msg)
		}
		var qe *redlock.QuorumError
		if errors.As(err, &qe) && qe.Granted+qe.Refused+qe.Failed < qe.N && !strings.Contains(msg, "not awaited") {
			t.Fatalf("TryLock = %q, want the nodes left out called \"not awaited\"", msg)
		}
	}
}

// A call after Close says the client is closed, not that nodes fail.
func TestMessageAfterClose(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newClient(t, c)
	cl.Close()
	_, err := cl.TryLock(t.Context(), "msg-after-close")
	if !errors.Is(err, redlock.ErrClosed) || !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("TryLock after Close = %v, want ErrClosed and ErrNotAcquired", err)
	}
	if msg := err.Error(); strings.Contains(msg, "failing") || !strings.Contains(msg, "client closed") || strings.Count(msg, "client closed") > 1 {
		t.Fatalf("TryLock after Close = %q, want it to say once that the client is closed", msg)
	}
}

// A lost lock is named once in the loss, however deep the cause.
func TestMessageNamesLostLockOnce(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "msg-lost-once"
	cl := newClient(t, c, redlock.WithTTL(2*time.Second), redlock.WithNodeTimeout(100*time.Millisecond))
	l, err := cl.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, name, 3)
	for _, n := range c.Nodes() {
		n.Do("DEL", redlock.LockKey(name)) // an operator broke the lock
	}
	err = l.Extend(t.Context(), 2*time.Second)
	if !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Extend after the keys were deleted = %v, want ErrNotHeld", err)
	}
	lost := l.Err()
	var le *redlock.LockLostError
	if !errors.As(lost, &le) || !errors.Is(lost, redlock.ErrLockLost) {
		t.Fatalf("Err() = %v, want a *LockLostError wrapping ErrLockLost", lost)
	}
	if k := strings.Count(lost.Error(), name); k != 1 {
		t.Fatalf("Err() = %q names the lock %d times, want once", lost, k)
	}
	err = l.Unlock(t.Context())
	if !errors.Is(err, redlock.ErrNotHeld) || !errors.Is(err, redlock.ErrLockLost) {
		t.Fatalf("Unlock of a lost lock = %v, want ErrNotHeld and ErrLockLost", err)
	}
	if k := strings.Count(err.Error(), name); k != 1 || strings.Count(err.Error(), "redlock:") != 1 {
		t.Fatalf("Unlock = %q, want the lock named once under one prefix", err)
	}
}

// Several nodes' failures read on one line, each with its address.
func TestMessageNodeErrorsOnOneLine(t *testing.T) {
	c := redistest.New(t, 3)
	for _, n := range c.Nodes() {
		n.Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	}
	err := newClient(t, c).Check(t.Context())
	if err == nil {
		t.Fatal("Check with allkeys-lru everywhere = nil, want findings")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "errors occurred") {
		t.Fatalf("Check = %q, want one line", msg)
	}
	for _, n := range c.Nodes() {
		if !strings.Contains(msg, "node "+n.Addr()+": ") {
			t.Fatalf("Check = %q, want node %s named", msg, n.Addr())
		}
	}
}
