package quorum

import (
	"context"
	"sync"
)

// Reply is one node's answer to one request.
type Reply[T any] struct {
	Node   int    // index of the node in the configured list
	Result Result // Granted, Refused or Failed
	Value  T      // what the request returned, when it did
	Err    error  // the cause when Result is Failed
}

// Round describes one request to every node.
type Round[T any] struct {
	// N is the number of nodes asked.
	N int
	// Need is how many must grant; 0 means a majority of N (A5).
	Need int
	// Call does the request to node i. It must return within its own
	// deadline (tau, A3); Run does not cancel it.
	Call func(i int) Reply[T]
	// After, if set, runs in node i's goroutine once its Call returned and
	// the caller settled the round (Outcome.Settle); ok is the decision. It
	// is how a failed acquisition releases every node, late grants
	// included (A8).
	After func(r Reply[T], ok bool)
}

// Outcome is what Run decided.
type Outcome[T any] struct {
	Tally   Tally
	Replies []Reply[T] // the replies the decision used, in arrival order
	Err     error      // ctx.Err() when the caller's context ended first

	settle func(ok bool)
}

// Settle hands the caller's final decision to the After hooks. The caller
// decides, not the tally alone, because a quorum reached after the validity
// ran out is a failure too (A7). Only the first call counts, so
// "defer out.Settle(false)" guards the paths that return early or panic.
func (o Outcome[T]) Settle(ok bool) { o.settle(ok) }

// OK reports whether the round reached Q grants.
func (o Outcome[T]) OK() bool { return o.Err == nil && o.Tally.Succeeded() }

// Run sends the round to all N nodes in parallel and returns as soon as the
// outcome is decided (A6) or ctx ends. Nodes still busy then finish in the
// background, bounded by their own deadline, and run After once the caller
// calls Settle. The caller must call Settle exactly once when After is set.
func Run[T any](ctx context.Context, r Round[T]) Outcome[T] {
	replies := make(chan Reply[T], r.N) // buffered: a straggler never blocks
	decided := make(chan struct{})
	var ok bool // written before decided is closed, read after
	var once sync.Once
	settle := func(v bool) { once.Do(func() { ok = v; close(decided) }) }
	for i := range r.N {
		go func() {
			rep := r.Call(i)
			rep.Node = i
			replies <- rep
			if r.After != nil {
				<-decided
				r.After(rep, ok)
			}
		}()
	}
	tally := NewTally(r.N)
	if r.Need > 0 {
		tally = NewTallyNeed(r.N, r.Need)
	}
	out := Outcome[T]{Tally: tally, Replies: make([]Reply[T], 0, r.N), settle: settle}
	for !out.Tally.Decided() {
		select {
		case rep := <-replies:
			out.Tally.Add(rep.Result)
			out.Replies = append(out.Replies, rep)
		case <-ctx.Done():
			out.Err = ctx.Err()
			return out
		}
	}
	return out
}
