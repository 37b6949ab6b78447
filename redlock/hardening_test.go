package redlock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// H3: a panic in Do's fn propagates unchanged, and the lock is released
// and its extension stopped on the way out: a recovered panic (net/http
// recovers) must not leave the lock renewed until Client.Close.
func TestDoReleasesWhenFnPanics(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithTTL(10*time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	other := newClient(t, c, redlock.WithTTL(10*time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	type boom struct{ msg string }
	var got any
	func() {
		defer func() { got = recover() }()
		cl.Do(t.Context(), "do-panic", func(context.Context) error {
			panic(boom{"fn panicked"})
		})
	}()
	if b, ok := got.(boom); !ok || b.msg != "fn panicked" {
		t.Fatalf("recovered %#v from Do, want fn's own panic value", got)
	}
	// Released at once: another client takes it now, not after the TTL.
	l, err := other.TryLock(t.Context(), "do-panic")
	if err != nil {
		t.Fatalf("TryLock right after fn panicked: %v (the lock was not released)", err)
	}
	l.Unlock(t.Context())
}

// H4: Unlock of a lock whose deadline had already passed, with nobody
// watching Done, reports the loss: Err() wraps ErrLockLost, not "released
// by Unlock".
func TestErrAfterUnlockOfExpiredLockIsLost(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithTTL(100*time.Millisecond), redlock.WithNodeTimeout(30*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "unlock-expired")
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(l.Until()) { // wait out the deadline without calling Err or Done
		time.Sleep(time.Until(l.Until()) + time.Millisecond)
	}
	err = l.Unlock(t.Context())
	if !errors.Is(err, redlock.ErrNotHeld) || !errors.Is(err, redlock.ErrLockLost) {
		t.Fatalf("Unlock after the deadline = %v, want ErrNotHeld wrapping ErrLockLost", err)
	}
	if e := l.Err(); !errors.Is(e, redlock.ErrLockLost) {
		t.Fatalf("Err() after Unlock of an expired lock = %v, want ErrLockLost", e)
	}
}
