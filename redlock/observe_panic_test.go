package redlock_test

import (
	"context"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// O1, H3: a panic in fn inside Do still ends the lock exactly once for the
// observer: the HeldDelta of the events goes +1 when Do takes the lock and
// back to 0 after the panic went through Do (its release, or its loss,
// counted once), and the lock is free on every node for the next caller.
func TestHeldDeltaBackToZeroAfterPanicInDo(t *testing.T) {
	c := redistest.New(t, 3)
	rec := &recorder{}
	cl := newClient(t, c, redlock.WithObserver(rec), redlock.WithNodeTimeout(250*time.Millisecond))
	const name, rounds = "held-panic", 3
	for range rounds {
		func() {
			defer func() {
				if r := recover(); r != "user code panics" {
					t.Fatalf("recovered %v, want the panic of fn unchanged (H3)", r)
				}
			}()
			cl.Do(t.Context(), name, func(context.Context) error { panic("user code panics") })
			t.Fatal("Do returned although fn panicked")
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, low, plus, minus := rec.heldCount()
		if low < 0 {
			t.Fatalf("the held count went down to %d: a lock ended twice", low)
		}
		if sum == 0 && plus == rounds && minus == rounds {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held count %d (%d +1, %d -1) 10s after %d panics in Do, want 0 (%d each)\n%s", sum, plus, minus, rounds, rounds, describe(rec.all()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Nothing left held: another caller takes the name at once.
	l, err := newClient(t, c).TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock after the panics: %v, want the lock free", err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}
