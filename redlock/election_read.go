package redlock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/pipe"
)

// leaderRead is one read of the leader record on every node (elect.lua
// read), decided by quorum as the replies arrive (V4): a leadership is
// reported once Q nodes report the same term and value; the read fails
// once Q nodes say nobody leads, or once neither a leadership nor "nobody
// leads" can reach Q any more.
type leaderRead struct {
	e    *Election
	q, n int
	tau  time.Duration

	mu       sync.Mutex
	reports  []Leader // per node: what it reported (zero: none, or not yet)
	errs     []error  // per node: its failure, or nil
	answered []bool   // per node: its reply is in
	counts   map[Leader]int
	empty    int
	failed   int
	pending  int
	best     Leader
	bestN    int
	decided  bool
	done     chan struct{}
	ctxErr   error
}

// Reply implements pipe.Handler: an empty array says nobody leads on that
// node, {term, value} reports a live leadership, anything else is a
// failure.
func (r *leaderRead) Reply(i int, v any, err error) {
	var l Leader
	if err == nil {
		l, err = parseLeader(v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return
	}
	r.answered[i] = true
	r.pending--
	switch {
	case err != nil:
		r.errs[i] = err
		r.failed++
	case l.Token == 0:
		r.empty++
	default:
		r.reports[i] = l
		r.counts[l]++
		if r.counts[l] > r.bestN {
			r.best, r.bestN = l, r.counts[l]
		}
	}
	// Decided at Q agreeing reports, at Q saying nobody leads, or once
	// neither can reach Q: the best so far, or the empty answers, plus
	// every node still silent fall short. A failed node and one empty
	// answer must not decide before the other live nodes answered: their
	// empty answers make the quorum that says nobody leads (Observe, V6).
	if r.bestN >= r.q || r.empty >= r.q || (r.bestN+r.pending < r.q && r.empty+r.pending < r.q) {
		r.decided = true
		close(r.done)
	}
}

// parseLeader reads elect.lua's read reply: {} or {term, value}.
func parseLeader(v any) (Leader, error) {
	a, ok := v.([]any)
	switch {
	case !ok:
		return Leader{}, fmt.Errorf("unexpected reply %T to the leader read", v)
	case len(a) == 0:
		return Leader{}, nil
	case len(a) != 2:
		return Leader{}, fmt.Errorf("unexpected reply of %d items to the leader read", len(a))
	}
	term, ok1 := a[0].([]byte)
	value, ok2 := a[1].([]byte)
	if !ok1 || !ok2 {
		return Leader{}, fmt.Errorf("unexpected reply %T, %T to the leader read", a[0], a[1])
	}
	t, err := strconv.ParseUint(string(term), 10, 64)
	if err != nil || t == 0 {
		return Leader{}, fmt.Errorf("leader record with a bad term %.24q", term)
	}
	return Leader{Value: string(value), Token: t}, nil
}

// finish decides the read now: the silent nodes count as failed (timed
// out), or the caller's context ended.
func (r *leaderRead) finish(ctxErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return
	}
	r.ctxErr = ctxErr
	if ctxErr == nil {
		for i := range r.errs {
			if !r.answered[i] {
				r.errs[i] = pipe.ErrTimeout
			}
		}
		r.failed += r.pending
		r.pending = 0
	}
	r.decided = true
	close(r.done)
}

// read asks every node for the leader record, each request bounded by the
// node timeout, and returns the leadership a quorum reports, or a
// *NoLeaderError (V4), and the read's tally. It returns as soon as the
// outcome is known.
func (e *Election) read(ctx context.Context) (Leader, *leaderRead, error) {
	n := len(e.c.nodes)
	r := &leaderRead{
		e: e, n: n, q: n/2 + 1, tau: e.c.cfg.nodeTimeout, pending: n,
		reports: make([]Leader, n), errs: make([]error, n), answered: make([]bool, n), counts: map[Leader]int{}, done: make(chan struct{}),
	}
	if err := ctx.Err(); err != nil {
		r.finish(err)
		return Leader{}, r, r.noLeader()
	}
	args := []any{electHash, 2, e.key, e.record, "read"}
	deadline := time.Now().Add(r.tau)
	for i, node := range e.c.nodes {
		node.Do(pipe.Request{Cmd: "EVALSHA", Args: args, Deadline: deadline, H: r, Node: i})
	}
	await(ctx, r.done, deadline, r.finish)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctxErr == nil && r.bestN >= r.q {
		return r.best, r, nil
	}
	return Leader{}, r, r.noLeaderLocked()
}

func (r *leaderRead) noLeader() *NoLeaderError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.noLeaderLocked()
}

// noLeaderLocked describes a read that found no leader; r.mu is held.
func (r *leaderRead) noLeaderLocked() *NoLeaderError {
	var nodes *multierror.Error
	for i, err := range r.errs {
		if err != nil {
			nodes = appendNodeErrors(nodes, nodeError(r.e.c.nodes[i].Addr(), err, r.tau))
		}
	}
	return &NoLeaderError{
		Election: r.e.name, N: r.n, Quorum: r.q,
		Agreeing: r.bestN, Empty: r.empty, Failed: r.failed,
		Nodes: nodes, ctxErr: r.ctxErr,
	}
}
