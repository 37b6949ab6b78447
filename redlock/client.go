package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/clock"
	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
	"github.com/quorumlock/quorumlock/pool"
)

// Client takes locks on a fixed set of independent Redis nodes. It is safe
// for concurrent use. It does not own the pools: close them after the last
// call.
type Client struct {
	pools     []pool.Pool
	nodes     []*pipe.Node  // one pipelined connection per node
	wait      *waiters      // wakes Lock callers on release
	local     queue         // this client's waiters per name: the first stands in the line (L9)
	sems      queue         // the same for its semaphores' waiters (S4)
	ext       extensions    // auto-extension of held locks
	closing   chan struct{} // closed when Close starts
	cfg       config
	clock     clock.Clock
	holder    string // the values' holder part up to its time (holder.go, M1)
	chanID    string // "w" and random: names the client's release channels and starts its waiters' ids (L10)
	closeOnce sync.Once
	bg        bgHandler // reports failures of background requests, when observed
	stats     struct {
		fenced, fastPath atomic.Int64 // fenced acquisitions; those done in one round trip (F2)
		handOvers        atomic.Int64 // locks handed over by a release (L12)
		claims           atomic.Int64 // claims sent for them (L12)
	}
}

// New returns a Client for the nodes behind pools, one pool per independent
// Redis master (ALGORITHM.md N1); the quorum is len(pools)/2+1 (A5). The
// options are the defaults of every call. New returns an error wrapping
// ErrInvalidOption, naming the bad value, when pools is empty, holds a nil
// or misconfigured pool or two pools with the same address, or an option is
// out of range.
func New(pools []pool.Pool, opts ...Option) (*Client, error) {
	if len(pools) == 0 {
		return nil, fmt.Errorf("%w: no pools: a quorum lock needs at least one Redis node", ErrInvalidOption)
	}
	seen := make(map[string]int, len(pools))
	for i, p := range pools {
		if p == nil {
			return nil, fmt.Errorf("%w: pool %d is nil", ErrInvalidOption, i)
		}
		if err := pool.Validate(p); err != nil {
			return nil, fmt.Errorf("%w: pool %d: %w", ErrInvalidOption, i, err)
		}
		if j, dup := seen[p.Addr()]; dup {
			return nil, fmt.Errorf("%w: pools %d and %d have the same address %q: the nodes must be independent", ErrInvalidOption, j, i, p.Addr())
		}
		seen[p.Addr()] = i
	}
	cfg := defaultConfig()
	cfg.apply(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{pools: slices.Clone(pools), cfg: cfg, clock: clock.Real, closing: make(chan struct{}), holder: holderHead(), chanID: "w" + rand.Text()}
	c.ext.c, c.bg.c = c, c
	c.wait = newWaiters(pools)
	c.nodes = make([]*pipe.Node, len(pools))
	for i, p := range pools {
		var h pipe.Hooks
		if c.observed() {
			addr := p.Addr()
			h.Reconnect = func(err error) { c.reconnected(addr, err) }
		}
		c.nodes[i] = pipe.NewNodeWithHooks(p, h, acquireSrc, releaseSrc, lineSrc, extendSrc, fenceSrc, electSrc, semSrc)
	}
	return c, nil
}

// Close stops the client's connections to the nodes, after the requests in
// flight (each bounded by the node timeout). It does not close the pools.
// Calls after Close fail with errors wrapping ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.ext.close()
		c.wait.close()
		for _, n := range c.nodes {
			n.Close()
		}
	})
	return nil
}

// Nodes returns the addresses of the client's nodes, in configured order.
func (c *Client) Nodes() []string {
	addrs := make([]string, len(c.pools))
	for i, p := range c.pools {
		addrs[i] = p.Addr()
	}
	return addrs
}

// callConfig returns the client's defaults overridden by opts, validated.
func (c *Client) callConfig(name string, opts []Option) (config, error) {
	if err := validName(name); err != nil {
		return config{}, err
	}
	cfg := c.cfg
	if len(opts) > 0 {
		cfg.apply(opts)
		if len(cfg.observers) != len(c.cfg.observers) {
			return config{}, errObserverPerCall
		}
		if err := cfg.validate(); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

// TryLock makes one attempt to take the lock called name on a quorum of the
// nodes. It returns the held *Lock, or an error wrapping ErrNotAcquired: a
// *QuorumError that says whether the lock is held elsewhere, too many nodes
// failed or the validity ran out, with each node's failure as a *NodeError,
// and that wraps ctx.Err() when the caller's context ended the attempt. It
// returns as soon as the outcome is known (ALGORITHM.md A6): a slow or frozen
// node never delays it. It does not wait in line: while others wait, the
// lock is held or reserved for the first of them, and TryLock is refused
// (L5).
func (c *Client) TryLock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	cfg, err := c.callConfig(name, opts)
	if err != nil {
		return nil, err
	}
	return c.attempt(ctx, name, &cfg, nil)
}

// Lock takes the lock called name, making up to WithTries attempts with the
// WithRetryDelay pause between them, or until ctx ends, whichever comes
// first (ALGORITHM.md A9). Once it finds the lock held, it waits in line
// with the waiters of every client, served in the order they arrived: a
// release hands the lock over to the first in line (L12), or reserves it
// for that one (L1-L6), and wakes it at once; the attempts a waiter makes
// meanwhile to keep its place do not count against WithTries. A lock
// handed over starts with an Until() of a few node timeouts, which moves
// to the TTL a round trip later, when the waiter has claimed it on a
// quorum (L12). Its errors are TryLock's, counting the attempts.
func (c *Client) Lock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	cfg, err := c.callConfig(name, opts)
	if err != nil {
		return nil, err
	}
	return c.acquire(ctx, name, &cfg, mutex{c, name})
}

// acquire is Lock and Semaphore.Acquire: contend for k, reported as an
// EventLock when the client is observed.
func (c *Client) acquire(ctx context.Context, name string, cfg *config, k contender) (*Lock, error) {
	if c.observed() {
		return c.observeLock(ctx, name, cfg, k)
	}
	return c.contend(ctx, k, cfg)
}

// contender is what Lock and Semaphore.Acquire wait for: a lock name, or a
// semaphore's permits (S4).
type contender interface {
	// attempt is one acquisition, through the line when w is set.
	attempt(ctx context.Context, cfg *config, w *waiter) (*Lock, error)
	// join puts the caller in the line (L1, L9).
	join() *waiter
	// busy reports whether the first attempt is to be made in line (L11).
	busy() bool
	// handedOver returns what a quorum handed over to w, claimed, or nil
	// (L12).
	handedOver(ctx context.Context, cfg *config, w *waiter) *Lock
}

// mutex is a lock name as Lock contends for it.
type mutex struct {
	c    *Client
	name string
}

func (m mutex) attempt(ctx context.Context, cfg *config, w *waiter) (*Lock, error) {
	return m.c.attempt(ctx, m.name, cfg, w)
}

func (m mutex) join() *waiter { return m.c.join(m.name) }

func (m mutex) busy() bool { return m.c.wait.recent(m.name, m.c.chanID) }

func (m mutex) handedOver(ctx context.Context, cfg *config, w *waiter) *Lock {
	return m.c.handedOver(ctx, m.name, cfg, w)
}

// contend makes Lock's attempts for k: retries (A9), the line (L1-L11).
func (c *Client) contend(ctx context.Context, k contender, cfg *config) (*Lock, error) {
	var (
		qe *QuorumError // the last attempt's failure
		w  *waiter      // this caller's place in line, once it waits
	)
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	// L11: on a name this client waited for a moment ago, a plain first
	// attempt would most likely be refused (held, or reserved for the
	// first in line), and could take a lapsed reservation's free key ahead
	// of the line: the caller joins the line at once instead.
	if k.busy() {
		w = k.join()
	}
	for attempt := 1; ; attempt++ {
		// L9, L11: behind the client's own waiters, a caller that joined
		// at once still makes a first attempt, a plain one, as it did
		// before joining: every Lock call attempts at least once.
		if turn := w.turn(); turn || qe == nil {
			aw := w
			if !turn {
				aw = nil
			}
			l, err := k.attempt(ctx, cfg, aw)
			if err == nil {
				return l, nil
			}
			var last *QuorumError
			if !errors.As(err, &last) {
				return nil, c.gaveUp(w, cfg, err)
			}
			qe = last.after(qe)
		}
		qe.Attempts = attempt
		if attempt >= cfg.tries || qe.ctxErr != nil || errors.Is(qe, ErrClosed) {
			return nil, c.gaveUp(w, cfg, qe)
		}
		join := w == nil && qe.Refused > 0
		if join { // held elsewhere: wait in line
			w = k.join()
		}
		// Joining, the first attempt in line is made at once (when it is
		// this waiter's turn among the client's own): it enters the line on
		// every node.
		if l, err := c.pauseFor(ctx, k, cfg, attempt, w, qe, join); l != nil || err != nil {
			if err != nil {
				return nil, c.gaveUp(w, cfg, err)
			}
			return l, nil
		}
	}
}

// gaveUp takes a waiter that gives up out of the line (L4) and returns err.
func (c *Client) gaveUp(w *waiter, cfg *config, err error) error {
	if w != nil {
		// Out of the client's queue first: from now on no leave of the
		// waiter before it names this one as its successor (L9).
		w.out()
		if w.entered.Load() {
			w.leave(cfg.nodeTimeout)
		}
	}
	return err
}

// pauseFor waits out the pause after attempt. A waiter in line makes an
// extra attempt when a release reserved the lock for it, and one every
// refresh interval to keep its place (L3), the first at once when now is
// set; none counts against WithTries: only the pauses do, so Lock gives up
// after about as long as it would polling alone. It returns the lock, or
// the error when ctx ended, or neither when the pause ran out.
func (c *Client) pauseFor(ctx context.Context, k contender, cfg *config, attempt int, w *waiter, qe *QuorumError, now bool) (*Lock, error) {
	end := c.clock.Now().Add(cfg.retryDelay(attempt))
	var bell <-chan struct{}
	if w != nil {
		bell = w.bell.ch
	}
	for {
		if now && w.turn() {
			l, err := k.attempt(ctx, cfg, w)
			if err == nil {
				return l, nil
			}
			var last *QuorumError
			if errors.As(err, &last) {
				*qe = *last.after(qe)
				qe.Attempts = attempt
				if qe.ctxErr != nil || errors.Is(qe, ErrClosed) {
					return nil, qe
				}
			}
		}
		now = true
		next := end
		if w != nil {
			next = earliest(end, c.clock.Now().Add(refreshEvery(cfg.nodeTimeout)))
		}
		tick := make(chan struct{})
		t := c.clock.AfterFunc(next.Sub(c.clock.Now()), func() { close(tick) })
		select {
		case <-tick:
		case <-bell:
		case <-ctx.Done():
			t.Stop()
			qe.ctxErr = ctx.Err()
			return nil, qe
		}
		t.Stop()
		// L12: a quorum may have handed the lock over to this waiter.
		if l := k.handedOver(ctx, cfg, w); l != nil {
			return l, nil
		}
		if !c.clock.Now().Before(end) {
			return nil, nil
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// attempt is one acquisition (ALGORITHM.md A1-A8, A10); a waiter's goes
// through the line (L2).
func (c *Client) attempt(ctx context.Context, name string, cfg *config, w *waiter) (*Lock, error) {
	if err := ctx.Err(); err != nil {
		qe := c.unsent("lock", name, ErrNotAcquired, err)
		if c.observed() {
			c.attempted(ctx, name, cfg, quorum.NewTally(len(c.nodes)), 0, 0, qe)
		}
		return nil, qe
	}
	// A1: 128 random bits, new for every attempt, then who takes the lock
	// (M1). The key and value are boxed once: one argument list serves
	// every node, and the release.
	var key, value any
	var keys []any // line.lua's, for a waiter
	var cmd string
	var seq uint64 // a waiter's attempt, numbered for a hand-over (L12)
	var args []any
	var counter any
	var t1 time.Time
	switch {
	case w != nil:
		w.entered.Store(true)
		keys = w.nameKeys(name)
		key, value, counter = keys[0], c.value(cfg), keys[2]
		w.last = value
		w.bell.reset() // reservations announced from now on ring for the next attempt
		// A2, L12: T1 is read before the take is numbered, and a
		// hand-over of it is counted from it.
		t1 = c.clock.Now()
		if !cfg.fencing {
			seq = w.bell.sent(t1, value)
		}
		cmd, args = "EVALSHA", w.lineArgs(keys, value, cfg, seq)
	default:
		key, value = LockKey(name), c.value(cfg)
		// Without fencing, SET NX PX GET (Redis 7) is the whole
		// acquisition, with no script to run: nil grants, a value refuses,
		// and a key of another type answers WRONGTYPE. Fencing needs the
		// script's INCR (F1).
		cmd, args = "SET", []any{key, value, "NX", "PX", cfg.ttl.Milliseconds(), "GET"}
		if cfg.fencing {
			counter = CounterKey(name) // boxed once: the acquisition and the write-back (F3)
			cmd, args = "EVALSHA", []any{acquireHash, 2, key, counter, value, cfg.ttl.Milliseconds(), "1"}
		}
		// A2: T1 is read right before the requests are queued for
		// writing; the connections are already open, and no back-off
		// follows.
		t1 = c.clock.Now()
	}
	r := c.run(ctx, nil, 0, cfg.nodeTimeout, cmd, args)

	ok := r.ok()
	var token uint64
	var fenceErrs *multierror.Error
	var fenceCtxErr error
	if ok && cfg.fencing {
		token, ok, fenceErrs, fenceCtxErr = c.fence(ctx, key, counter, value, cfg.nodeTimeout, r)
	}
	// A7: Q grants (and Q nodes holding the token, F3), and validity left
	// when the last reply used arrived.
	until := t1.Add(cfg.ttl - driftAllowance(cfg.ttl, cfg.driftFactor))
	decided := c.clock.Now()
	expired := !decided.Before(until)
	if ok && !expired {
		if w != nil {
			// L4: out of the line everywhere; the nodes that grant took
			// the entry out already.
			c.leave(name, w, cfg.nodeTimeout, r)
		}
		if c.observed() {
			c.attempted(ctx, name, cfg, r.tally, decided.Sub(t1), token, nil)
		}
		l := newLock(c, name, key, value, token, cfg, t1, until)
		if w != nil {
			l.line = w.hold(keys)
		}
		return l, nil
	}
	// A8: a failed attempt releases its value everywhere it may have been
	// applied: grants, errors, timeouts and nodes still silent (A4). A
	// definite refusal wrote nothing. Each release is queued behind the
	// acquisition on that node's connection, so it runs after it, and
	// nobody waits for it.
	// L2: on a node where a waiter is in line, the release reserves the
	// lock for the first of them (this waiter, if it is first).
	var release []any
	if w == nil {
		line, grants := lineAndGrants(name)
		release = releaseArgs(key, line, grants, value, "0", cfg.nodeTimeout, nil)
	} else {
		// L7: a turn that failed with no node held by anyone else means
		// that this waiter is what everyone waits for (too slow, or cut
		// off from most nodes): it goes to the back of the line, here and
		// in its next attempts, so the others get their turn.
		if r.tally.Refused == 0 {
			w.toBack(c)
		}
		release = w.undoArgs(keys, value, cfg.nodeTimeout)
	}
	c.undo(r, w, seq, release, keys, value, cfg.nodeTimeout)
	qe := r.attemptError(name, ok, expired, fenceErrs, fenceCtxErr)
	if c.observed() {
		c.attempted(ctx, name, cfg, r.tally, decided.Sub(t1), token, qe)
	}
	return nil, qe
}

// undo sends a failed attempt's undo, release, to every node where the
// attempt may have been applied (A8): not where it was refused, nor where
// it was never written (no connection could be made), without waiting for
// it. For a waiter's
// numbered attempt (seq not 0), a node still silent gets it once it
// answers, unless it refused: an undo that finds nothing of the attempt
// would pass on a hand-over of it (L12); the attempt's hand-overs count
// only if no undo went anywhere. (A function of its own: the closures below
// would otherwise move the attempt's variables to the heap on every
// attempt.)
func (c *Client) undo(r *round, w *waiter, seq uint64, release, keys []any, value any, tau time.Duration) {
	bg := c.background()
	undone := false // an undo of it went somewhere: its hand-overs never count
	send := func(i int) {
		undone = true
		c.nodes[i].Do(pipe.Request{Cmd: "EVALSHA", Args: release, Timeout: tau, H: bg, Node: i})
	}
	for i, s := range r.slots {
		switch {
		case s.res == quorum.Refused:
		case s.res == quorum.Failed && neverWritten(s.err):
			// No connection could be made: the attempt was never written
			// there, and there is nothing to undo (A8).
		case s.res == quorum.Pending && seq != 0: // below, once it answers
		default:
			send(i)
		}
	}
	if seq == 0 {
		return
	}
	r.whenAnswered(func(finals []quorum.Result) {
		// Queued before the waiter's leave, or after it as a release that
		// takes the finished waiter out of the line: an undo after the
		// leave would put it back, first, and reserve the key for nobody
		// (L12).
		w.fin.Lock()
		defer w.fin.Unlock()
		if w.finished {
			release = w.lateUndoArgs(keys, value, tau)
		}
		for i, f := range finals {
			if r.slots[i].res == quorum.Pending && f != quorum.Refused {
				send(i)
			}
		}
		if !undone { // its hand-overs count
			w.bell.settle(seq)
		}
	})
}

// attemptError describes a failed acquisition: r its round, ok whether the
// fencing write-back (if any) succeeded, expired whether the validity ran
// out (A7), with the write-back's failures and context error.
func (r *round) attemptError(name string, ok, expired bool, fenceErrs *multierror.Error, fenceCtxErr error) *QuorumError {
	qe := r.quorumError("lock", name, ErrNotAcquired)
	if fenceErrs != nil {
		qe.Nodes = appendNodeErrors(qe.Nodes, fenceErrs)
	}
	if fenceCtxErr != nil {
		qe.ctxErr = fenceCtxErr
	}
	qe.Expired = r.ok() && expired
	qe.Fencing = r.ok() && !ok && !expired
	return qe
}
