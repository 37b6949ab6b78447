package redlock

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/quorum"
	"github.com/quorumlock/quorumlock/pool"
)

// mixes enumerates every assignment of answers to n nodes; Pending stands
// for a node that stays silent.
func mixes(n int) [][]quorum.Result {
	all := [][]quorum.Result{{}}
	for range n {
		var next [][]quorum.Result
		for _, m := range all {
			for _, r := range []quorum.Result{quorum.Granted, quorum.Refused, quorum.Failed, quorum.Pending} {
				next = append(next, append(append([]quorum.Result(nil), m...), r))
			}
		}
		all = next
	}
	return all
}

// A3, A5, A6 on the real path (rounds through the per-node pipelines), for
// N = 1, 3, 5 and every mix of granting, refusing, failing and silent nodes:
// a round the answers decide returns without waiting for the silent nodes,
// with the right outcome; a round they cannot decide does not decide by
// itself (it ends with the caller's context). The pure decision for every
// sequence of answers, N = 7 included, is in internal/quorum's tally test.
func TestRoundDecidesWithoutWaitingForSilentNodes(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		for _, mix := range mixes(n) {
			checkMix(t, mix)
		}
	}
}

func checkMix(t *testing.T, mix []quorum.Result) {
	t.Helper()
	n := len(mix)
	q := n/2 + 1 // A5, from the rule, not from the code under test
	thaw := make(chan struct{})
	pools := make([]pool.Pool, n)
	answers := make(chan struct{}, n)
	var granted, against int
	for i, res := range mix {
		switch res {
		case quorum.Granted:
			granted++
		case quorum.Refused, quorum.Failed:
			against++
		}
		pools[i] = &fakePool{addr: fmt.Sprintf("n%d:1", i), thaw: thaw, reply: func(string, []any) (any, error) {
			if res != quorum.Pending {
				answers <- struct{}{}
			}
			switch res {
			case quorum.Granted:
				return nil, nil // SET NX GET: the key was free
			case quorum.Refused:
				return []byte("another holder"), nil
			case quorum.Failed:
				return nil, redis.Error("ERR boom")
			}
			return nil, errFrozen
		}}
	}
	c, err := New(pools)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer close(thaw) // before Close: let the frozen nodes go
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan *round, 1)
	go func() { got <- c.run(ctx, nil, 0, 5*time.Second, "SET", []any{"k", "v", "NX", "PX", 10000, "GET"}) }()

	if granted >= q || against >= n-q+1 {
		select {
		case r := <-got:
			if r.ctxErr != nil || r.ok() != (granted >= q) {
				t.Fatalf("mix %v: ok() = %v (context %v), want %v", mix, r.ok(), r.ctxErr, granted >= q)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("mix %v: the answers decide, but the round waited for the silent nodes", mix)
		}
		return
	}
	// Undecidable: every answer is in (and a moment to count it), yet the
	// round must still be open when the caller gives up.
	for range granted + against {
		<-answers
	}
	time.Sleep(2 * time.Millisecond)
	cancel()
	if r := <-got; r.ctxErr == nil {
		t.Fatalf("mix %v: the round decided (ok %v) although the answers cannot decide it", mix, r.ok())
	}
}

// R2: Unlock invalidates the handle before anything is answered: with every
// node frozen while the release is in flight, Err() already says released
// and Until() has moved back to the Unlock.
func TestUnlockInvalidatesBeforeSending(t *testing.T) {
	thaw := make(chan struct{})
	var frozen atomic.Bool
	var pools []pool.Pool
	for i := range 3 {
		pools = append(pools, &fakePool{addr: fmt.Sprintf("n%d:1", i), thaw: thaw, reply: func(string, []any) (any, error) {
			if frozen.Load() {
				return nil, errFrozen
			}
			return nil, nil // granted
		}})
	}
	c := newTestClient(t, pools, WithNodeTimeout(2*time.Second))
	defer close(thaw) // runs before the client's Close (a t.Cleanup)
	l, err := c.TryLock(t.Context(), "r2")
	if err != nil {
		t.Fatal(err)
	}
	frozen.Store(true)
	unlocked := make(chan error, 1)
	start := time.Now()
	go func() { unlocked <- l.Unlock(context.Background()) }()
	deadline := time.Now().Add(time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Err() still nil 1s into an Unlock whose nodes are frozen: not invalidated first")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-unlocked:
		t.Fatalf("Unlock returned (%v) before the check: the nodes were not frozen", err)
	default:
	}
	if !errors.Is(l.Err(), ErrNotHeld) || l.Until().After(time.Now()) || l.Until().Before(start) {
		t.Fatalf("during Unlock: Err() = %v, Until() = %v; want ErrNotHeld and the Unlock's start", l.Err(), l.Until())
	}
}

// A reply costs no allocation: Lock+Unlock on five nodes allocates as
// often as the raw floor of the classic bench does (29 times). A check
// that a failed request was never written, with its target declared for
// every reply, put one allocation on each reply (39 in all), unseen until
// the bench's allocation row.
func TestReplyAllocatesNothing(t *testing.T) {
	var pools []pool.Pool
	for i := range 5 {
		pools = append(pools, &fakePool{addr: fmt.Sprintf("n%d:1", i), reply: func(string, []any) (any, error) { return int64(1), nil }})
	}
	c := newTestClient(t, pools)
	rounds := make([]*round, 0, 200)
	for range cap(rounds) {
		rounds = append(rounds, c.newRound(nil, 0, time.Second, "EVALSHA"))
	}
	next := 0
	allocs := testing.AllocsPerRun(100, func() {
		r := rounds[next]
		next++
		for i := range 5 {
			r.Reply(i, int64(1), nil)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for the five replies of a round, want 0", allocs)
	}
}
