package quorum

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Hang stands for a node that never answers until the test lets it go.
const Hang Result = 100

// A3, A6, A8: for N = 1, 3, 5, 7 and every mix of granted, refused, failed
// and hanging nodes, Run returns as soon as the answers decide, without
// waiting for hanging nodes; when they cannot decide, it waits for the
// caller's context. Every node runs After with the settled decision,
// hanging ones included once they answer.
func TestRunReturnsWithoutWaitingForHangingNodes(t *testing.T) {
	for _, n := range []int{1, 3, 5, 7} {
		for _, mix := range outcomes(n, []Result{Granted, Refused, Failed, Hang}) {
			runMix(t, n, mix)
		}
	}
}

func runMix(t *testing.T, n int, mix []Result) {
	t.Helper()
	q := Majority(n)
	var granted, against int
	for _, r := range mix {
		switch r {
		case Granted:
			granted++
		case Refused, Failed:
			against++
		}
	}
	decidable := granted >= q || against >= n-q+1
	unhang := make(chan struct{})
	var answered, after sync.WaitGroup
	answered.Add(n)
	after.Add(n)
	var mu sync.Mutex
	afterOK := map[int]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Outcome[int])
	go func() {
		done <- Run(ctx, Round[int]{
			N: n,
			Call: func(i int) Reply[int] {
				defer answered.Done()
				r := mix[i]
				if r == Hang {
					<-unhang
					r = Granted // a late grant
				}
				return Reply[int]{Result: r, Value: i}
			},
			After: func(r Reply[int], ok bool) {
				mu.Lock()
				afterOK[r.Node] = ok
				mu.Unlock()
				after.Done()
			},
		})
	}()
	var out Outcome[int]
	if decidable {
		select {
		case out = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("N=%d mix=%v: Run did not return although the answers decide", n, mix)
		}
		if out.Err != nil || out.OK() != (granted >= q) {
			t.Fatalf("N=%d mix=%v: OK() = %v, Err = %v; want OK %v", n, mix, out.OK(), out.Err, granted >= q)
		}
	} else {
		select {
		case out = <-done:
			t.Fatalf("N=%d mix=%v: Run returned %+v before the outcome was decided", n, mix, out.Tally)
		case <-time.After(time.Millisecond):
		}
		cancel()
		out = <-done
		if !errors.Is(out.Err, context.Canceled) || out.OK() {
			t.Fatalf("N=%d mix=%v: undecided round gave OK %v, Err %v; want context.Canceled", n, mix, out.OK(), out.Err)
		}
	}
	decision := out.OK()
	out.Settle(decision)
	out.Settle(!decision) // only the first call counts
	close(unhang)
	answered.Wait()
	after.Wait()
	for i := range n {
		if afterOK[i] != decision {
			t.Fatalf("N=%d mix=%v: After(node %d) got ok=%v, want the settled %v", n, mix, i, afterOK[i], decision)
		}
	}
}
