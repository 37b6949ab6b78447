package redlock_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// waitDone waits for l.Done() up to limit and returns when it closed.
func waitDone(t *testing.T, l *redlock.Lock, limit time.Duration) time.Time {
	t.Helper()
	select {
	case <-l.Done():
		return time.Now()
	case <-time.After(limit):
		t.Fatalf("Done() still open after %v (Until() = %v)", limit, l.Until())
	}
	return time.Time{}
}

// H2: without extension, Done closes at Until() and Err says the lock ran
// out; on Unlock, Done closes at once and Err says it was released.
func TestDoneFiresAtDeadlineAndOnUnlock(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithTTL(300*time.Millisecond), redlock.WithNodeTimeout(50*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "done-deadline")
	if err != nil {
		t.Fatal(err)
	}
	until := l.Until()
	if l.Err() != nil {
		t.Fatalf("Err() = %v while held, want nil", l.Err())
	}
	closed := waitDone(t, l, 5*time.Second)
	if closed.Before(until) {
		t.Fatalf("Done() closed at %v, before Until() = %v", closed, until)
	}
	if late := closed.Sub(until); late > 200*time.Millisecond {
		t.Logf("Done() closed %v after Until() (scheduling noise on a loaded machine)", late)
	}
	if !errors.Is(l.Err(), redlock.ErrLockLost) {
		t.Fatalf("Err() = %v after the deadline, want ErrLockLost", l.Err())
	}
	if err := l.Unlock(t.Context()); !errors.Is(err, redlock.ErrNotHeld) || !errors.Is(err, redlock.ErrLockLost) {
		t.Fatalf("Unlock after the deadline = %v, want ErrNotHeld wrapping ErrLockLost", err)
	}

	l2, err := cl.TryLock(t.Context(), "done-unlock")
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, l2, 0+time.Millisecond)
	if !errors.Is(l2.Err(), redlock.ErrNotHeld) || errors.Is(l2.Err(), redlock.ErrLockLost) {
		t.Fatalf("Err() after Unlock = %v, want ErrNotHeld, not ErrLockLost", l2.Err())
	}
}

// E4: an Extend that fails with timeouts (not refusals) keeps the old
// deadline and does not release: the lock may still be held.
func TestFailedExtendKeepsDeadline(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithTTL(5*time.Second), redlock.WithNodeTimeout(100*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "extend-e4")
	if err != nil {
		t.Fatal(err)
	}
	before := l.Until()
	settled(t, c, "extend-e4", 5)
	for _, n := range c.Nodes()[:3] {
		n.Pause()
	}
	err = l.Extend(t.Context(), 5*time.Second)
	for _, n := range c.Nodes()[:3] {
		n.Resume()
	}
	if err == nil || errors.Is(err, redlock.ErrNotHeld) || !errors.Is(err, redlock.ErrNodeTimeout) {
		t.Fatalf("Extend with 3 of 5 frozen = %v, want node timeouts, not ErrNotHeld", err)
	}
	if !l.Until().Equal(before) || l.Err() != nil {
		t.Fatalf("after a failed Extend: Until() = %v (want %v), Err() = %v (want nil)", l.Until(), before, l.Err())
	}
	if k := holders(t, c, "extend-e4"); k != 5 {
		t.Fatalf("key on %d nodes after a failed Extend, want 5: it must not release", k)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// E1-E3, H2: with auto-extension a lock survives 10x its TTL while another
// client keeps failing to take it; Unlock stops the extension.
func TestAutoExtendOutlivesTTL(t *testing.T) {
	c := redistest.New(t, 5)
	const ttl = 200 * time.Millisecond
	holder := newClient(t, c, redlock.WithTTL(ttl), redlock.WithNodeTimeout(50*time.Millisecond))
	other := newClient(t, c, redlock.WithTTL(ttl), redlock.WithNodeTimeout(50*time.Millisecond))
	l, err := holder.TryLock(t.Context(), "auto", redlock.WithAutoExtend())
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(10 * ttl)
	tries := 0
	for time.Now().Before(end) {
		if o, err := other.TryLock(t.Context(), "auto"); err == nil {
			o.Unlock(t.Context())
			t.Fatalf("another client took the lock %d tries in, while it was auto-extended", tries)
		}
		tries++
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-l.Done():
		t.Fatalf("Done() closed during auto-extension: %v", l.Err())
	default:
	}
	if !time.Now().Before(l.Until()) {
		t.Fatalf("Until() = %v has passed under auto-extension", l.Until())
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if _, err := other.TryLock(t.Context(), "auto"); err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	t.Logf("%d failed tries by the other client over %v", tries, 10*ttl)
}

// WithMaxHold ends the hold within max hold + TTL, with ErrLockLost, and
// releases the keys.
func TestMaxHoldEndsTheHold(t *testing.T) {
	c := redistest.New(t, 3)
	const ttl, maxHold = 300 * time.Millisecond, 600 * time.Millisecond
	cl := newClient(t, c, redlock.WithTTL(ttl), redlock.WithNodeTimeout(50*time.Millisecond))
	start := time.Now()
	l, err := cl.TryLock(t.Context(), "max-hold", redlock.WithAutoExtend(), redlock.WithMaxHold(maxHold))
	if err != nil {
		t.Fatal(err)
	}
	closed := waitDone(t, l, 5*time.Second)
	if held := closed.Sub(start); held > maxHold+ttl+100*time.Millisecond || held < maxHold {
		t.Fatalf("held for %v, want between max hold %v and max hold + TTL %v", held, maxHold, maxHold+ttl)
	}
	if !errors.Is(l.Err(), redlock.ErrLockLost) {
		t.Fatalf("Err() = %v, want ErrLockLost (max hold)", l.Err())
	}
	deadline := time.Now().Add(time.Second)
	for holders(t, c, "max-hold") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("keys still on the nodes 1s after the max hold ended the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// H2, E4: a majority freezes while fn runs inside Do: fn's context is
// cancelled by the deadline with ErrLockLost as its cause, Do returns
// ErrLockLost, and once the nodes resume another client gets the lock.
func TestDoCancelsFnWhenMajorityFreezes(t *testing.T) {
	c := redistest.New(t, 5)
	const ttl = 500 * time.Millisecond
	cl := newClient(t, c, redlock.WithTTL(ttl), redlock.WithNodeTimeout(50*time.Millisecond))
	var cause error
	var cancelledAt time.Time
	err := cl.Do(t.Context(), "do-freeze", func(ctx context.Context) error {
		for _, n := range c.Nodes()[:3] {
			n.Pause()
		}
		<-ctx.Done()
		cancelledAt = time.Now()
		cause = context.Cause(ctx)
		return ctx.Err()
	}, redlock.WithMaxHold(time.Minute))
	for _, n := range c.Nodes()[:3] {
		n.Resume()
	}
	if !errors.Is(err, redlock.ErrLockLost) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want ErrLockLost joined with fn's context.Canceled", err)
	}
	if !errors.Is(cause, redlock.ErrLockLost) {
		t.Fatalf("context.Cause in fn = %v, want ErrLockLost", cause)
	}
	if cancelledAt.IsZero() {
		t.Fatal("fn's context was never cancelled")
	}
	var l *redlock.Lock
	deadline := time.Now().Add(3 * time.Second)
	for {
		if l, err = cl.TryLock(t.Context(), "do-freeze"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client got the lock 3s after the nodes resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.Unlock(t.Context())
}

// Do returns fn's error, runs fn under the lock, and releases after.
func TestDoRunsUnderTheLock(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithNodeTimeout(200*time.Millisecond))
	boom := errors.New("boom")
	var ran atomic.Bool
	err := cl.Do(t.Context(), "do-plain", func(ctx context.Context) error {
		ran.Store(true)
		if _, err := cl.TryLock(ctx, "do-plain"); !errors.Is(err, redlock.ErrNotAcquired) {
			t.Errorf("TryLock inside Do = %v, want ErrNotAcquired", err)
		}
		return boom
	})
	if !ran.Load() || !errors.Is(err, boom) || errors.Is(err, redlock.ErrLockLost) {
		t.Fatalf("Do = %v (ran %v), want fn's error only", err, ran.Load())
	}
	l, err := cl.TryLock(t.Context(), "do-plain")
	if err != nil {
		t.Fatalf("TryLock after Do: %v (not released?)", err)
	}
	l.Unlock(t.Context())
	if err := cl.Do(t.Context(), "do-plain", nil); !errors.Is(err, redlock.ErrInvalidOption) {
		t.Fatalf("Do(nil fn) = %v, want ErrInvalidOption", err)
	}
}

// E3: Extends at once with different TTLs: Until() never lies past the
// keys' expiry on a quorum (the PEXPIRE that ran last on the nodes). The
// race it guards against (fixed by Lock.extendMu) needs one Extend's
// goroutine descheduled right after its round; this property check did not
// reproduce it in three runs without the fix, so it is a regression check
// of the property, not a proof of the fix.
func TestConcurrentExtendsKeepUntilWithinTheKeys(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithTTL(5*time.Second), redlock.WithNodeTimeout(500*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "extend-race")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(t.Context())
	for i := range 30 {
		var wg sync.WaitGroup
		for _, ttl := range []time.Duration{300 * time.Millisecond, 5 * time.Second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.Extend(t.Context(), ttl)
			}()
		}
		wg.Wait()
		// No wait for the last nodes: the quorum behind Until() applied its
		// TTL before answering, and the others can only lengthen theirs.
		var expiries []time.Time
		for _, n := range c.Nodes() {
			pttl, err := redis.Int64(n.Do("PTTL", redlock.LockKey("extend-race")))
			if err == nil && pttl > 0 {
				expiries = append(expiries, time.Now().Add(time.Duration(pttl)*time.Millisecond))
			}
		}
		slices.SortFunc(expiries, func(a, b time.Time) int { return b.Compare(a) })
		if len(expiries) < 3 {
			t.Fatalf("round %d: the key is on %d nodes, want a quorum", i, len(expiries))
		}
		// The quorum's weakest expiry, with the 1ms granularity of PTTL.
		if u, k := l.Until(), expiries[2].Add(2*time.Millisecond); u.After(k) {
			t.Fatalf("round %d: Until() = %v is %v past the keys' expiry on a quorum", i, u, u.Sub(k))
		}
	}
}
