package redlock

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/clock"
	"github.com/quorumlock/quorumlock/pool"
)

func TestDriftAllowance(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		rho  float64
		want time.Duration
	}{
		{10 * time.Second, 0.01, 102 * time.Millisecond},
		{time.Second, 0.01, 12 * time.Millisecond},
		{time.Second, 0, 2 * time.Millisecond},
		{30 * time.Second, 0.1, 3002 * time.Millisecond},
	} {
		if got := driftAllowance(tc.ttl, tc.rho); got != tc.want {
			t.Errorf("driftAllowance(%v, %v) = %v, want %v", tc.ttl, tc.rho, got, tc.want)
		}
	}
}

// fakeNodes returns n fake nodes that grant every acquisition after
// advancing the clock by delay[i] (a slow node), and records releases.
func fakeNodes(fc *clock.Fake, delays []time.Duration, released *sync.Map) []pool.Pool {
	pools := make([]pool.Pool, len(delays))
	for i, d := range delays {
		addr := fmt.Sprintf("fake:%d", i)
		pools[i] = &fakePool{addr: addr, reply: func(cmd string, args []any) (any, error) {
			switch scriptOf(cmd, args) {
			case "acquire":
				fc.Advance(d)
				return nil, nil // SET NX GET: the key was free
			case "release":
				released.Store(addr, true)
				return int64(1), nil
			}
			return int64(1), nil
		}}
	}
	return pools
}

// A2, A7: Until() is T1 + TTL - D, with T1 read on the clock right before
// the first request was written.
func TestUntilIsT1PlusTTLMinusDrift(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	fc := clock.NewFake(start)
	var released sync.Map
	c := newTestClient(t, fakeNodes(fc, []time.Duration{0, 0, 0}, &released), WithTTL(10*time.Second))
	c.clock = fc
	l, err := c.TryLock(t.Context(), "until")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if want := start.Add(10*time.Second - 102*time.Millisecond); !l.Until().Equal(want) {
		t.Fatalf("Until() = %v, want %v", l.Until(), want)
	}
}

// A7: a quorum reached after the validity is used up is not a lock: TryLock
// fails with Expired set, and the value is released on every node (A8).
func TestQuorumAfterValidityIsNotALock(t *testing.T) {
	fc := clock.NewFake(time.Unix(1_000_000, 0))
	var released sync.Map
	// Each node's answer costs 600ms of the 1s TTL: the second grant, the
	// quorum of three, arrives past T1 + 1s - 12ms.
	c := newTestClient(t, fakeNodes(fc, []time.Duration{600 * time.Millisecond, 600 * time.Millisecond, 600 * time.Millisecond}, &released),
		WithTTL(time.Second), WithNodeTimeout(100*time.Millisecond))
	c.clock = fc
	_, err := c.TryLock(t.Context(), "slow")
	var qe *QuorumError
	if !errors.As(err, &qe) || !qe.Expired || !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("TryLock = %v, want ErrNotAcquired with Expired", err)
	}
	if !strings.Contains(err.Error(), "validity used up") {
		t.Fatalf("message %q does not say the validity was used up", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		released.Range(func(any, any) bool { n++; return true })
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("released on %d of 3 nodes, want all 3 (A8)", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A7 boundary: validity left by one nanosecond is a lock. The third node
// never answers, so the two others decide; only node 1 moves the clock, and
// T1 is read before the requests are queued, so T1 is the start.
func TestQuorumJustInsideValidityIsALock(t *testing.T) {
	fc := clock.NewFake(time.Unix(1_000_000, 0))
	var released sync.Map
	// 1s TTL, D = 12ms: validity 988ms.
	pools := fakeNodes(fc, []time.Duration{0, 988*time.Millisecond - 1}, &released)
	pools = append(pools, &fakePool{addr: "hang:1", reply: nil}) // frozen: no answer before the deadline
	c := newTestClient(t, pools, WithTTL(time.Second), WithNodeTimeout(100*time.Millisecond))
	c.clock = fc
	l, err := c.TryLock(t.Context(), "edge")
	if err != nil {
		t.Fatalf("TryLock = %v, want a lock with 1ns of validity left", err)
	}
	if got := l.Until().Sub(fc.Now()); got != 1 {
		t.Fatalf("validity left = %v, want 1ns", got)
	}
}

func TestDefaultRetryDelayIsJitteredInRange(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 1000 {
		d := DefaultRetryDelay(i)
		if d < 50*time.Millisecond || d >= 250*time.Millisecond {
			t.Fatalf("DefaultRetryDelay(%d) = %v, want in [50ms, 250ms)", i, d)
		}
		seen[d] = true
	}
	if len(seen) < 900 {
		t.Fatalf("DefaultRetryDelay gave %d distinct values in 1000 calls, want jitter", len(seen))
	}
}

// Lock makes exactly WithTries attempts, with the WithRetryDelay pauses.
func TestLockRetriesThenReportsAttempts(t *testing.T) {
	var attempts sync.Map
	refuse := func(cmd string, args []any) (any, error) {
		if cmd == "SET" {
			return []byte("another holder"), nil // SET NX GET: the holder's value
		}
		return int64(0), nil // a waiter's attempt in line (L2), or its leaving
	}
	pools := []pool.Pool{&fakePool{addr: "a:1", reply: refuse}, &fakePool{addr: "b:1", reply: refuse}, &fakePool{addr: "c:1", reply: refuse}}
	c := newTestClient(t, pools, WithTries(4), WithRetryDelay(func(n int) time.Duration {
		attempts.Store(n, true)
		return time.Microsecond
	}))
	_, err := c.Lock(t.Context(), "retry")
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Attempts != 4 || qe.Reason() != "held by another holder" {
		t.Fatalf("Lock = %v, want 4 attempts, held by another holder", err)
	}
	for n := 1; n <= 3; n++ {
		if _, ok := attempts.Load(n); !ok {
			t.Fatalf("retry delay not asked for attempt %d", n)
		}
	}
	if _, ok := attempts.Load(4); ok {
		t.Fatal("retry delay asked after the last attempt")
	}
}
