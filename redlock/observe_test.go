package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []redlock.Event
}

func (r *recorder) Observe(e redlock.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// all returns the events so far.
func (r *recorder) all() []redlock.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]redlock.Event(nil), r.events...)
}

// matching returns the events so far for which match holds.
func (r *recorder) matching(match func(redlock.Event) bool) []redlock.Event {
	var out []redlock.Event
	for _, e := range r.all() {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls until an event matches (some come from background work,
// after the call that caused them returned) and returns the first one.
func (r *recorder) waitFor(t testing.TB, what string, match func(redlock.Event) bool) redlock.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := r.matching(match); len(m) > 0 {
			return m[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within 10s; events:\n%s", what, describe(r.all()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heldCount sums the HeldDelta of the events so far, in order: sum is
// the number of locks held by the events' count, low the lowest the sum
// went (below 0, a lock ended twice), plus and minus the number of events
// that went +1 and -1.
func (r *recorder) heldCount() (sum, low, plus, minus int) {
	for _, e := range r.all() {
		sum += e.HeldDelta
		low = min(low, sum)
		switch e.HeldDelta {
		case 1:
			plus++
		case -1:
			minus++
		}
	}
	return sum, low, plus, minus
}

// describe lists events one a line, for failure messages.
func describe(es []redlock.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s name=%q outcome=%s g/r/f=%d/%d/%d attempts=%d held=%+d cause=%s node=%s kind=%s err=%v\n",
			e.Kind, e.Name, e.Outcome, e.Granted, e.Refused, e.Failed, e.Attempts, e.HeldDelta, e.Cause, e.Node, e.Failure, e.Err)
	}
	return b.String()
}

func kindName(k redlock.EventKind, name string) func(redlock.Event) bool {
	return func(e redlock.Event) bool { return e.Kind == k && e.Name == name }
}

// Every call reports one event with the round's figures: a granted and a
// refused attempt, a Lock that gives up and one that waits for a release,
// an Extend, a release. WithObserver is a client option only.
func TestObserverSeesEveryCall(t *testing.T) {
	c := redistest.New(t, 5)
	rec, rec2 := &recorder{}, &recorder{}
	cl := newClient(t, c, redlock.WithObserver(rec))
	cl2 := newClient(t, c, redlock.WithObserver(rec2))
	ctx := t.Context()

	l, err := cl.TryLock(ctx, "obs")
	if err != nil {
		t.Fatal(err)
	}
	a := rec.waitFor(t, "attempt", kindName(redlock.EventAttempt, "obs"))
	if a.Outcome != redlock.OutcomeOK || a.Granted < 3 || a.Nodes != 5 || a.Quorum != 3 || a.HeldDelta != 1 ||
		a.InLock || a.Attempts != 1 || a.Latency <= 0 || a.Err != nil || a.Ctx != ctx {
		t.Fatalf("granted attempt: %s", describe([]redlock.Event{a}))
	}

	if _, err := cl2.TryLock(ctx, "obs"); !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("TryLock of a held lock: %v", err)
	}
	a = rec2.waitFor(t, "refused attempt", kindName(redlock.EventAttempt, "obs"))
	if a.Outcome != redlock.OutcomeRefused || a.Refused < 3 || a.HeldDelta != 0 || !errors.Is(a.Err, redlock.ErrNotAcquired) {
		t.Fatalf("refused attempt: %s", describe([]redlock.Event{a}))
	}

	// A Lock that gives up: its attempts, then one EventLock.
	if _, err := cl2.Lock(ctx, "obs", redlock.WithTries(2), redlock.WithRetryDelay(func(int) time.Duration { return time.Millisecond })); err == nil {
		t.Fatal("Lock of a held lock with 2 tries succeeded")
	}
	locks := rec2.matching(kindName(redlock.EventLock, "obs"))
	inLock := rec2.matching(func(e redlock.Event) bool { return e.Kind == redlock.EventAttempt && e.InLock })
	if len(locks) != 1 || locks[0].Outcome != redlock.OutcomeRefused || locks[0].Attempts != len(inLock) || len(inLock) < 2 || locks[0].Latency <= 0 {
		t.Fatalf("Lock that gave up: want one refused EventLock counting its %d attempts; events:\n%s", len(inLock), describe(rec2.all()))
	}

	if err := l.Extend(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	x := rec.waitFor(t, "extend", kindName(redlock.EventExtend, "obs"))
	if x.Outcome != redlock.OutcomeOK || x.Auto || x.Granted < 3 || x.HeldDelta != 0 || x.Latency <= 0 {
		t.Fatalf("extend: %s", describe([]redlock.Event{x}))
	}

	// A Lock that waits in line until the holder releases.
	type res struct {
		l   *redlock.Lock
		err error
	}
	got := make(chan res, 1)
	before := len(rec2.matching(func(e redlock.Event) bool { return e.Kind == redlock.EventAttempt && e.InLock }))
	go func() {
		l, err := cl2.Lock(ctx, "obs", redlock.WithTries(1000))
		got <- res{l, err}
	}()
	rec2.waitFor(t, "waiting attempt", func(e redlock.Event) bool {
		return e.Kind == redlock.EventAttempt && e.InLock && e.Outcome == redlock.OutcomeRefused && len(rec2.matching(func(e redlock.Event) bool { return e.Kind == redlock.EventAttempt && e.InLock })) > before
	})
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	r := rec.waitFor(t, "release", kindName(redlock.EventRelease, "obs"))
	if r.Outcome != redlock.OutcomeOK || r.HeldDelta != -1 || r.Granted < 3 || r.Err != nil {
		t.Fatalf("release: %s", describe([]redlock.Event{r}))
	}
	w := <-got
	if w.err != nil {
		t.Fatalf("waiting Lock: %v", w.err)
	}
	locks = rec2.matching(kindName(redlock.EventLock, "obs"))
	attempts := len(rec2.matching(func(e redlock.Event) bool { return e.Kind == redlock.EventAttempt && e.InLock })) - before
	if len(locks) != 2 || locks[1].Outcome != redlock.OutcomeOK || locks[1].Attempts != attempts || locks[1].HeldDelta != 0 || locks[1].Granted < 3 {
		t.Fatalf("Lock that waited: want an OK EventLock counting its %d attempts; events:\n%s", attempts, describe(rec2.all()))
	}
	if err := w.l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// WithObserver given to a call.
	_, err = cl.TryLock(ctx, "obs", redlock.WithObserver(rec))
	if !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), "WithObserver") {
		t.Fatalf("TryLock with WithObserver: %v; want ErrInvalidOption naming WithObserver", err)
	}
}

// A lost lock is reported once, with its cause: its deadline passed with
// nobody watching it (expired), the nodes no longer hold it (not_held, from
// a refused Extend), auto-extension could not extend it in time
// (extend_failed). An Unlock after the loss is refused and ends nothing.
func TestObserverSeesLostLocks(t *testing.T) {
	c := redistest.New(t, 5)
	rec := &recorder{}
	cl := newClient(t, c, redlock.WithObserver(rec), redlock.WithNodeTimeout(100*time.Millisecond))
	ctx := t.Context()

	if _, err := cl.TryLock(ctx, "lost-expired", redlock.WithTTL(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	e := rec.waitFor(t, "lost", kindName(redlock.EventLost, "lost-expired"))
	if e.Cause != redlock.LostExpired || e.HeldDelta != -1 || !errors.Is(e.Err, redlock.ErrLockLost) {
		t.Fatalf("expired: %s", describe([]redlock.Event{e}))
	}

	l, err := cl.TryLock(ctx, "lost-notheld")
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, "lost-notheld", 5)
	for _, n := range c.Nodes() {
		if _, err := n.Do("DEL", redlock.LockKey("lost-notheld")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Extend(ctx, time.Second); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Extend of a deleted key: %v", err)
	}
	x := rec.waitFor(t, "extend", kindName(redlock.EventExtend, "lost-notheld"))
	e = rec.waitFor(t, "lost", kindName(redlock.EventLost, "lost-notheld"))
	if x.Outcome != redlock.OutcomeRefused || x.Refused < 3 || e.Cause != redlock.LostNotHeld || e.HeldDelta != -1 {
		t.Fatalf("not held:\n%s", describe([]redlock.Event{x, e}))
	}
	if err := l.Unlock(ctx); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Unlock after the loss: %v", err)
	}
	r := rec.waitFor(t, "release", kindName(redlock.EventRelease, "lost-notheld"))
	if r.Outcome != redlock.OutcomeRefused || r.HeldDelta != 0 {
		t.Fatalf("Unlock after the loss: %s", describe([]redlock.Event{r}))
	}

	if _, err := cl.TryLock(ctx, "lost-auto", redlock.WithTTL(600*time.Millisecond), redlock.WithAutoExtend()); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "auto extend", func(e redlock.Event) bool {
		return e.Kind == redlock.EventExtend && e.Name == "lost-auto" && e.Auto && e.Outcome == redlock.OutcomeOK
	})
	for _, n := range c.Nodes()[:3] {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	e = rec.waitFor(t, "lost", kindName(redlock.EventLost, "lost-auto"))
	for _, n := range c.Nodes()[:3] {
		if err := n.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	// Auto-extension gives up when no retry can finish before Until(); the
	// deadline's own timer may fire first on a loaded machine: either
	// way the lock is lost once, and not for the nodes' refusal.
	if (e.Cause != redlock.LostExtendFailed && e.Cause != redlock.LostExpired) || e.HeldDelta != -1 {
		t.Fatalf("auto-extension failing: %s", describe([]redlock.Event{e}))
	}
	failed := rec.matching(func(e redlock.Event) bool {
		return e.Kind == redlock.EventExtend && e.Name == "lost-auto" && e.Auto && e.Outcome == redlock.OutcomeFailed
	})
	if len(failed) == 0 {
		t.Fatalf("no failed auto-extension before the loss:\n%s", describe(rec.all()))
	}
	t.Logf("auto-extended lock lost: %s after %d failed extensions", e.Cause, len(failed))
	if n := len(rec.matching(func(e redlock.Event) bool { return e.Kind == redlock.EventLost })); n != 3 {
		t.Fatalf("%d EventLost, want 3 (one per lock):\n%s", n, describe(rec.all()))
	}
}

// Each failed request to a node is reported with its kind: NOSCRIPT after a
// SCRIPT FLUSH, a timeout from a frozen node (and the connection replaced
// once it wakes), a connection failure from a node that is down.
func TestObserverSeesNodeFailures(t *testing.T) {
	c := redistest.New(t, 5)
	rec := &recorder{}
	cl := newClient(t, c, redlock.WithObserver(rec), redlock.WithNodeTimeout(100*time.Millisecond))
	ctx := t.Context()
	nodes := c.Nodes()
	failure := func(n *redistest.Node, kind redlock.FailureKind) func(redlock.Event) bool {
		return func(e redlock.Event) bool {
			return e.Kind == redlock.EventNodeFailure && e.Node == n.Addr() && e.Failure == kind
		}
	}
	lockUnlock := func() {
		t.Helper()
		l, err := cl.TryLock(ctx, "nodefail")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// NOSCRIPT: the release is a script; the acquisition (SET) is not.
	l, err := cl.TryLock(ctx, "nodefail")
	if err != nil {
		t.Fatal(err)
	}
	// TryLock returns at the quorum (A6): node 0 may not yet have run the
	// SCRIPT LOADs its new connection sent before the SET. Once it holds
	// the key it has, and the flush comes after them.
	settled(t, c, "nodefail", 5)
	if _, err := nodes[0].Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	e := rec.waitFor(t, "noscript", failure(nodes[0], redlock.FailureNoScript))
	var ne *redlock.NodeError
	if !errors.As(e.Err, &ne) || ne.Addr != nodes[0].Addr() || e.Name != "" {
		t.Fatalf("noscript: %s", describe([]redlock.Event{e}))
	}

	// A frozen node: a timeout; once it wakes, its connection is replaced.
	if err := nodes[1].Pause(); err != nil {
		t.Fatal(err)
	}
	lockUnlock()
	e = rec.waitFor(t, "timeout", failure(nodes[1], redlock.FailureTimeout))
	if !errors.Is(e.Err, redlock.ErrNodeTimeout) {
		t.Fatalf("timeout: %s", describe([]redlock.Event{e}))
	}
	if err := nodes[1].Resume(); err != nil {
		t.Fatal(err)
	}
	lockUnlock()
	e = rec.waitFor(t, "reconnect", func(e redlock.Event) bool { return e.Kind == redlock.EventReconnect && e.Node == nodes[1].Addr() })
	if e.Err == nil {
		t.Fatalf("reconnect without a reason: %s", describe([]redlock.Event{e}))
	}

	// A node that is down: a connection failure.
	if err := nodes[2].Kill(); err != nil {
		t.Fatal(err)
	}
	lockUnlock()
	lockUnlock()
	rec.waitFor(t, "connection", failure(nodes[2], redlock.FailureConnection))
}

// O1: the HeldDelta of the events sums to the number of locks held: +1 per
// granted attempt, -1 exactly once per lock at its release or its loss,
// whichever comes first, a lock that nobody watches included. Over many
// locks ending every way at once, the sum never goes below 0 and comes back
// to 0.
func TestHeldDeltaSumsToZero(t *testing.T) {
	c := redistest.New(t, 5)
	rec := &recorder{}
	cl := newClient(t, c, redlock.WithObserver(rec), redlock.WithNodeTimeout(100*time.Millisecond))
	ctx := t.Context()
	const rounds = 12
	ends := []func(g, i int) error{
		func(g, i int) error { // released
			l, err := cl.Lock(ctx, "held-shared", redlock.WithTries(1000))
			if err != nil {
				return err
			}
			return l.Unlock(ctx)
		},
		func(g, i int) error { // expires unwatched
			_, err := cl.TryLock(ctx, fmt.Sprintf("held-expire-%d-%d", g, i), redlock.WithTTL(250*time.Millisecond))
			return err
		},
		func(g, i int) error { // the nodes lose it; Unlock after, then Unlock again
			name := fmt.Sprintf("held-del-%d-%d", g, i)
			l, err := cl.TryLock(ctx, name)
			if err != nil {
				return err
			}
			settled(t, c, name, 5)
			for _, n := range c.Nodes() {
				if _, err := n.Do("DEL", redlock.LockKey(name)); err != nil {
					return err
				}
			}
			if err := l.Extend(ctx, time.Second); !errors.Is(err, redlock.ErrNotHeld) {
				return fmt.Errorf("extend of deleted keys: %v", err)
			}
			l.Unlock(ctx)
			l.Unlock(ctx)
			return nil
		},
		func(g, i int) error { // Do, auto-extended; and an Unlock racing the deadline
			if err := cl.Do(ctx, "held-do", func(context.Context) error { return nil }, redlock.WithTries(1000)); err != nil {
				return err
			}
			l, err := cl.TryLock(ctx, fmt.Sprintf("held-race-%d-%d", g, i), redlock.WithTTL(150*time.Millisecond))
			if err != nil {
				return err
			}
			time.Sleep(time.Duration(i%4) * 40 * time.Millisecond)
			l.Unlock(ctx)
			return nil
		},
	}
	sem, err := cl.Semaphore("held-sem", 2)
	if err != nil {
		t.Fatal(err)
	}
	ends = append(ends, func(g, i int) error { // a semaphore's permits count too (S3)
		l, err := sem.Acquire(ctx, redlock.WithTries(1000))
		if err != nil {
			return err
		}
		if i%2 == 0 {
			return l.Unlock(ctx)
		}
		_, err = sem.TryAcquire(ctx, redlock.WithTTL(250*time.Millisecond)) // expires unwatched, or refused
		if err != nil && !errors.Is(err, redlock.ErrNotAcquired) {
			return err
		}
		return l.Unlock(ctx)
	})
	for _, err := range concurrently(4, func(g int) error {
		for i := range rounds {
			if err := ends[(g+i)%len(ends)](g, i); err != nil {
				return err
			}
		}
		return nil
	}) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, low, plus, minus := rec.heldCount()
		if low < 0 {
			t.Fatalf("the held count went down to %d", low)
		}
		if sum == 0 {
			if plus < 4*rounds {
				t.Fatalf("%d locks counted held, want at least %d", plus, 4*rounds)
			}
			t.Logf("%d locks, %d ends", plus, minus)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("locks held by the events' count: %d (%d +1, %d -1) 10s after the last call", sum, plus, minus)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
