package redlock_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// A1, A7, R1: a lock is written to every node with a fresh value, its
// deadline lies within TTL of the call, and Unlock deletes it everywhere.
func TestLockUnlockRoundTrip(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithTTL(2*time.Second), redlock.WithNodeTimeout(500*time.Millisecond))
	before := time.Now()
	l, err := cl.TryLock(t.Context(), "round-trip")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	after := time.Now()
	// D = 2s*0.01 + 2ms = 22ms; T1 lies between before and after.
	if u := l.Until(); u.Before(before.Add(2*time.Second-22*time.Millisecond)) || u.After(after.Add(2*time.Second-22*time.Millisecond)) {
		t.Fatalf("Until() = %v, want T1+TTL-22ms with T1 in [%v, %v]", u, before, after)
	}
	settled(t, c, "round-trip", 5)
	values := map[string]bool{}
	for _, n := range c.Nodes() {
		values[keyOn(t, n, "round-trip")] = true
		pttl, err := redis.Int64(n.Do("PTTL", redlock.LockKey("round-trip")))
		if err != nil || pttl <= 0 || pttl > 2000 {
			t.Fatalf("PTTL on %s = %d, %v; want in (0, 2000]", n.Addr(), pttl, err)
		}
	}
	if len(values) != 1 || values[""] {
		t.Fatalf("lock values on the nodes = %v, want one value on all five", values)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	settled(t, c, "round-trip", 0) // stragglers of Unlock finish in the background
	// A1: a second acquisition writes another value.
	l2, err := cl.TryLock(t.Context(), "round-trip")
	if err != nil {
		t.Fatalf("second TryLock: %v", err)
	}
	settled(t, c, "round-trip", 5)
	if v := keyOn(t, c.Nodes()[0], "round-trip"); values[v] {
		t.Fatalf("second acquisition reused the value %q", v)
	}
	// R4: the old handle cannot touch the new acquisition.
	if err := l.Unlock(t.Context()); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("second Unlock of the old handle = %v, want ErrNotHeld", err)
	}
	if err := l.Extend(t.Context(), time.Second); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Extend of the old handle = %v, want ErrNotHeld", err)
	}
	if k := holders(t, c, "round-trip"); k != 5 {
		t.Fatalf("%d nodes hold the new lock after the old handle's calls, want 5", k)
	}
	if err := l2.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock of the new handle: %v", err)
	}
}

// A6, A7, L2, L12: many instances (a client each, as separate services would
// have) and goroutines contend for one name, waiting in line; never two
// holders at once, and a read-modify-write under the lock loses no update.
func TestContentionNeverTwoHolders(t *testing.T) {
	c := redistest.New(t, 5)
	opts := []redlock.Option{redlock.WithTTL(5 * time.Second), redlock.WithNodeTimeout(time.Second),
		redlock.WithTries(1000), redlock.WithRetryDelay(func(int) time.Duration { return time.Millisecond })}
	clients := []*redlock.Client{newClient(t, c, opts...), newClient(t, c, opts...), newClient(t, c, opts...), newClient(t, c, opts...)}
	const workers, rounds = 8, 15
	var inside, counter, overlaps atomic.Int64
	for _, err := range concurrently(workers, func(w int) error {
		cl := clients[w%len(clients)]
		for range rounds {
			l, err := cl.Lock(t.Context(), "contended")
			if err != nil {
				return err
			}
			if inside.Add(1) != 1 {
				overlaps.Add(1)
			}
			v := counter.Load()
			time.Sleep(time.Millisecond)
			counter.Store(v + 1)
			inside.Add(-1)
			if err := l.Unlock(t.Context()); err != nil {
				return err
			}
		}
		return nil
	}) {
		t.Errorf("worker: %v", err)
	}
	if o := overlaps.Load(); o != 0 {
		t.Fatalf("%d overlapping holds, want 0", o)
	}
	if got := counter.Load(); got != workers*rounds {
		t.Fatalf("counter = %d after %d holds, want %d (lost updates mean two holders)", got, workers*rounds, workers*rounds)
	}
}

// A10, A6: with one or two of five nodes killed or frozen, locks still
// succeed, and no call waits for a frozen node: TryLock+Unlock take far less
// than the node timeout.
func TestMinorityDownOrFrozen(t *testing.T) {
	const tau = 3 * time.Second
	for _, tc := range []struct {
		name   string
		faults int
		freeze bool
	}{{"one killed", 1, false}, {"two killed", 2, false}, {"one frozen", 1, true}, {"two frozen", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.New(t, 5)
			cl := newClient(t, c, redlock.WithNodeTimeout(tau))
			for _, n := range c.Nodes()[:tc.faults] {
				var err error
				if tc.freeze {
					err = n.Pause()
				} else {
					err = n.Kill()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := range 5 {
				var lockErr, unlockErr error
				d := timed(func() {
					var l *redlock.Lock
					if l, lockErr = cl.TryLock(t.Context(), "minority"); lockErr == nil {
						unlockErr = l.Unlock(t.Context())
					}
				})
				if lockErr != nil || unlockErr != nil {
					t.Fatalf("round %d: TryLock = %v, Unlock = %v; want both nil", i, lockErr, unlockErr)
				}
				if d >= tau/2 {
					t.Fatalf("round %d: TryLock+Unlock took %v with the node timeout at %v: it waited for a dead node", i, d, tau)
				}
			}
			for _, n := range c.Nodes()[:tc.faults] {
				if tc.freeze {
					n.Resume()
				}
			}
		})
	}
}

// A6, A4: with three of five nodes down, TryLock fails promptly with
// ErrNotAcquired, says too many nodes failed, and names the dead nodes.
func TestMajorityDownFailsPromptly(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithNodeTimeout(2*time.Second))
	for _, n := range c.Nodes()[:3] {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	d := timed(func() { _, err = cl.TryLock(t.Context(), "majority-down") })
	if !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("TryLock = %v, want ErrNotAcquired", err)
	}
	if d >= time.Second {
		t.Fatalf("TryLock took %v with refused connections, want it prompt", d)
	}
	var qe *redlock.QuorumError
	if !errors.As(err, &qe) || qe.Failed < 3 || qe.Reason() != "too many nodes failing" {
		t.Fatalf("error = %v, want a *QuorumError with >= 3 failed and reason 'too many nodes failing'", err)
	}
	var ne *redlock.NodeError
	if !errors.As(err, &ne) || (ne.Addr != c.Nodes()[0].Addr() && ne.Addr != c.Nodes()[1].Addr() && ne.Addr != c.Nodes()[2].Addr()) {
		t.Fatalf("errors.As(*NodeError) = %v, want a dead node's address", ne)
	}
	if !strings.Contains(err.Error(), "of 5 nodes, need 3") {
		t.Fatalf("message %q does not give the counts", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Fatalf("error %v claims the caller's context ended; it did not", err)
	}
}

// A3, A6: three of five frozen: TryLock fails after one node timeout, with
// ErrNodeTimeout on the frozen nodes, not the caller's DeadlineExceeded.
func TestMajorityFrozenFailsAfterNodeTimeout(t *testing.T) {
	c := redistest.New(t, 5)
	const tau = 200 * time.Millisecond
	cl := newClient(t, c, redlock.WithNodeTimeout(tau))
	for _, n := range c.Nodes()[:3] {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	d := timed(func() { _, err = cl.TryLock(t.Context(), "majority-frozen") })
	if !errors.Is(err, redlock.ErrNotAcquired) || !errors.Is(err, redlock.ErrNodeTimeout) {
		t.Fatalf("TryLock = %v, want ErrNotAcquired and ErrNodeTimeout", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TryLock = %v: a node timeout must not look like the caller's deadline", err)
	}
	if d < tau || d > 10*tau {
		t.Fatalf("TryLock took %v, want about one node timeout (%v)", d, tau)
	}
	for _, n := range c.Nodes()[:3] {
		n.Resume()
	}
}

// R3: Unlock after the lock expired while another client holds it says
// ErrNotHeld and leaves the other holder's key alone.
func TestUnlockAfterExpiryKeepsOtherHolder(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithTTL(200*time.Millisecond), redlock.WithNodeTimeout(50*time.Millisecond))
	a, err := cl.TryLock(t.Context(), "expiry")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(a.Until()) + 100*time.Millisecond)
	b, err := cl.TryLock(t.Context(), "expiry", redlock.WithTTL(5*time.Second))
	if err != nil {
		t.Fatalf("TryLock after A expired: %v", err)
	}
	if err := a.Unlock(t.Context()); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("A.Unlock after expiry = %v, want ErrNotHeld", err)
	}
	settled(t, c, "expiry", 5)
	time.Sleep(50 * time.Millisecond) // A's deletes, if any were wrong, would land by now
	if k := holders(t, c, "expiry"); k != 5 {
		t.Fatalf("B's key is on %d nodes after A's Unlock, want 5", k)
	}
	if err := b.Unlock(t.Context()); err != nil {
		t.Fatalf("B.Unlock: %v", err)
	}
}

// E1, H1: Until() is local, and Extend after Until() refuses at once,
// without touching Redis.
func TestExtendAfterDeadlineTouchesNoNode(t *testing.T) {
	c := redistest.New(t, 3)
	pools, sends := countingPools(t, c)
	cl := newClientOn(t, pools, redlock.WithTTL(time.Second), redlock.WithNodeTimeout(20*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "extend-late")
	if err != nil {
		t.Fatal(err)
	}
	if sends.Load() == 0 {
		t.Fatal("TryLock wrote no request through the counting pools: the count proves nothing")
	}
	// TryLock returned at a quorum: the last node's connection (its
	// scripts loaded first) and request may still be on their way. Count
	// from when every node has answered.
	settled(t, c, "extend-late", 3)
	// H1: Until() and Done() are local: no request asks the nodes.
	sends.Store(0)
	_, _ = l.Until(), l.Done()
	time.Sleep(20 * time.Millisecond)
	if n := sends.Load(); n != 0 {
		t.Fatalf("Until() and Done() wrote %d requests, want 0 (H1)", n)
	}
	time.Sleep(time.Until(l.Until()) + 10*time.Millisecond)
	sends.Store(0)
	if err := l.Extend(t.Context(), time.Second); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Extend after Until() = %v, want ErrNotHeld", err)
	}
	time.Sleep(20 * time.Millisecond) // a request, had one been queued, would be written by now
	if n := sends.Load(); n != 0 {
		t.Fatalf("Extend after Until() wrote %d requests, want 0", n)
	}
}

// E2, E3: Extend prolongs only a key that still holds our value; it never
// re-creates a missing key.
func TestExtend(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithTTL(time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	l, err := cl.TryLock(t.Context(), "extend")
	if err != nil {
		t.Fatal(err)
	}
	old := l.Until()
	if err := l.Extend(t.Context(), 5*time.Second); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if u := l.Until(); !u.After(old.Add(3 * time.Second)) {
		t.Fatalf("Until() = %v after Extend(5s), want well past the old %v", u, old)
	}
	// A quorum confirmed before Extend returned (A6); the rest follow a
	// moment later, so poll for them rather than guess how long they take.
	// A node counts once seen with PTTL > 4000: on a slow machine the
	// first ones fall below it a second on, while the last are still due.
	seen := make([]bool, len(c.Nodes()))
	extended := func() (k int) {
		for i, n := range c.Nodes() {
			if pttl, _ := redis.Int64(n.Do("PTTL", redlock.LockKey("extend"))); pttl > 4000 {
				seen[i] = true
			}
			if seen[i] {
				k++
			}
		}
		return k
	}
	if k := extended(); k < 3 {
		t.Fatalf("%d nodes have PTTL > 4000 after Extend(5s) returned, want a quorum of 3", k)
	}
	deadline := time.Now().Add(3 * time.Second)
	for k := extended(); k != 5; k = extended() {
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes seen with PTTL > 4000 in the 3s after Extend(5s), want all 5", k)
		}
		time.Sleep(time.Millisecond)
	}
	settled(t, c, "extend", 5)
	// The key vanishes from three nodes (say, a flush): Extend must fail
	// and must not write it back.
	for _, n := range c.Nodes()[:3] {
		n.Do("DEL", redlock.LockKey("extend"))
	}
	before := l.Until()
	err = l.Extend(t.Context(), 5*time.Second)
	if !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Extend with the key gone from 3 of 5 = %v, want ErrNotHeld", err)
	}
	if k := holders(t, c, "extend"); k != 2 {
		t.Fatalf("key on %d nodes after the failed Extend, want the 2 that still had it", k)
	}
	// H2: refusals from a quorum prove the lock is gone: it is lost now.
	select {
	case <-l.Done():
	default:
		t.Fatal("Done() still open after the nodes said the key is gone")
	}
	if !errors.Is(l.Err(), redlock.ErrLockLost) || !l.Until().Before(before) {
		t.Fatalf("Err() = %v, Until() = %v; want ErrLockLost and a deadline moved back from %v", l.Err(), l.Until(), before)
	}
	if err := l.Unlock(t.Context()); !errors.Is(err, redlock.ErrNotHeld) {
		t.Fatalf("Unlock with the key on 2 of 5 = %v, want ErrNotHeld", err)
	}
}

// A8, A9: the caller's context ends an attempt at once, the error says so,
// and values written by it are released once the nodes answer.
func TestContextCancellation(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithNodeTimeout(time.Second))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := cl.TryLock(ctx, "cancel"); !errors.Is(err, redlock.ErrNotAcquired) || !errors.Is(err, context.Canceled) {
		t.Fatalf("TryLock on a cancelled context = %v, want ErrNotAcquired and context.Canceled", err)
	}

	// Lock waits for a held lock until its context's deadline.
	held, err := cl.TryLock(t.Context(), "cancel")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	d := timed(func() { _, err = cl.Lock(ctx, "cancel") })
	if !errors.Is(err, redlock.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a held lock = %v, want ErrNotAcquired and DeadlineExceeded", err)
	}
	var qe *redlock.QuorumError
	// The figures are the last attempt's: one that the deadline cut short
	// has fewer answers than a quorum (seen about once in 150 runs).
	if !errors.As(err, &qe) || qe.Attempts < 2 || qe.Refused < 3 && !(qe.Granted+qe.Refused+qe.Failed < qe.N && qe.Granted == 0) || qe.Reason() != "context ended: context deadline exceeded" {
		t.Fatalf("Lock error = %v (after %v), want several attempts, a refusing quorum (or an attempt the deadline cut short), the context named", err, d)
	}
	if d > 2*time.Second {
		t.Fatalf("Lock took %v with a 300ms context", d)
	}
	held.Unlock(t.Context())

	// A majority frozen: the caller gives up at 100ms; the writes still
	// queued on the frozen nodes are released once they wake.
	for _, n := range c.Nodes()[:3] {
		n.Pause()
	}
	ctx, cancel3 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel3()
	d = timed(func() { _, err = cl.TryLock(ctx, "cancel-frozen") })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("TryLock with 3 frozen = %v, want DeadlineExceeded and ErrNotAcquired", err)
	}
	if d > 500*time.Millisecond {
		t.Fatalf("TryLock took %v after its 100ms context ended", d)
	}
	time.Sleep(100 * time.Millisecond)
	for _, n := range c.Nodes()[:3] {
		n.Resume()
	}
	deadline := time.Now().Add(3 * time.Second)
	for holders(t, c, "cancel-frozen") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes still hold the abandoned attempt's key 3s later (TTL 10s): not released", holders(t, c, "cancel-frozen"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
