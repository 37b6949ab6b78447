package redlock_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// newSemaphore returns the semaphore name with permits on a new client of
// c, with a node timeout that a loaded test machine keeps (opts may change it).
func newSemaphore(t *testing.T, c *redistest.Cluster, name string, permits int, opts ...redlock.Option) *redlock.Semaphore {
	t.Helper()
	opts = append([]redlock.Option{redlock.WithNodeTimeout(250 * time.Millisecond)}, opts...)
	s, err := newClient(t, c, opts...).Semaphore(name, permits)
	if err != nil {
		t.Fatalf("Semaphore(%q, %d): %v", name, permits, err)
	}
	return s
}

// holdAll takes permits permits of s at once (TryAcquire) and returns
// them, failing the test if one is refused.
func holdAll(t *testing.T, s *redlock.Semaphore, permits int) []*redlock.Lock {
	t.Helper()
	var held []*redlock.Lock
	for range permits {
		l, err := s.TryAcquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	return held
}

// holdings records the permits held, to count those whose Until() has not
// passed at any moment.
type holdings struct {
	mu   sync.Mutex
	held map[*redlock.Lock]struct{}
	most int
}

// add records l and returns how many recorded permits, l included, stand
// before their Until() now.
func (h *holdings) add(l *redlock.Lock) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = map[*redlock.Lock]struct{}{}
	}
	h.held[l] = struct{}{}
	n := 0
	now := time.Now()
	for x := range h.held {
		if now.Before(x.Until()) {
			n++
		} else {
			delete(h.held, x)
		}
	}
	h.most = max(h.most, n)
	return n
}

func (h *holdings) remove(l *redlock.Lock) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.held, l)
}

// S1, S2: many clients acquiring and releasing permits at once: at every
// acquisition, the permits whose Until() has not passed never number more
// than K, and all K are used.
func TestSemaphoreNeverMoreThanKHolders(t *testing.T) {
	c := redistest.New(t, 5)
	const name, permits, clients, rounds = "sem-bound", 3, 8, 6
	var h holdings
	sems := make([]*redlock.Semaphore, clients)
	for i := range sems {
		sems[i] = newSemaphore(t, c, name, permits, redlock.WithTries(1000))
	}
	for _, err := range concurrently(clients, func(g int) error {
		// A breach is kept and the rounds go on: the others keep
		// contending, and h.most counts the worst of it.
		var over error
		for range rounds {
			l, err := sems[g].Acquire(t.Context())
			if err != nil {
				return errors.Join(over, err)
			}
			if n := h.add(l); n > permits {
				over = errors.New("more holders than permits")
			}
			time.Sleep(5 * time.Millisecond) // holds a moment: the others contend
			h.remove(l)
			if err := l.Unlock(t.Context()); err != nil {
				return errors.Join(over, err)
			}
		}
		return over
	}) {
		t.Fatal(err)
	}
	if h.most > permits {
		t.Fatalf("%d holders at once, want at most %d", h.most, permits)
	}
}

// S2, L5: with every permit held, TryAcquire is refused with
// ErrNotAcquired, held elsewhere; once one is given back it succeeds.
func TestSemaphoreTryAcquireRefusedWhenAllHeld(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "sem-try"
	s := newSemaphore(t, c, name, 2)
	a, err := s.TryAcquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.TryAcquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	other := newSemaphore(t, c, name, 2)
	_, err = other.TryAcquire(t.Context())
	var qe *redlock.QuorumError
	if !errors.Is(err, redlock.ErrNotAcquired) || !errors.As(err, &qe) || qe.Refused < 2 {
		t.Fatalf("TryAcquire with both permits held: %v, want ErrNotAcquired refused by a majority", err)
	}
	if err := a.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	d, err := other.TryAcquire(t.Context())
	if err != nil {
		t.Fatalf("TryAcquire after a permit was given back: %v", err)
	}
	unlockAll(t, b, d)
}

// S6: bad permits and names are refused with ErrInvalidOption naming them,
// and so are bad options of Acquire and TryAcquire; nothing panics.
func TestSemaphoreBadInput(t *testing.T) {
	cl := newClient(t, redistest.New(t, 1))
	for _, tc := range []struct {
		name    string
		permits int
		want    string
	}{
		{"s", 0, "permits 0"},
		{"s", -3, "permits -3"},
		{"s", redlock.MaxPermits + 1, "permits 1025"},
		{"", 2, "empty lock name"},
		{strings.Repeat("x", redlock.MaxNameLen+1), 2, "longer than"},
	} {
		_, err := cl.Semaphore(tc.name, tc.permits)
		if !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Semaphore(%.10q, %d) = %v, want ErrInvalidOption naming %q", tc.name, tc.permits, err, tc.want)
		}
	}
	s, err := cl.Semaphore("sem-bad", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(t.Context(), redlock.WithTTL(0)); !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), "TTL 0s") {
		t.Fatalf("Acquire(WithTTL(0)) = %v, want ErrInvalidOption naming the TTL", err)
	}
	if _, err := s.TryAcquire(t.Context(), redlock.WithTries(0)); !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), "tries 0") {
		t.Fatalf("TryAcquire(WithTries(0)) = %v, want ErrInvalidOption naming the tries", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Acquire(ctx); !errors.Is(err, redlock.ErrNotAcquired) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire on an ended context = %v, want ErrNotAcquired and context.Canceled", err)
	}
}
