package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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
	line      queue         // orders this client's waiters per name
	ext       extensions    // auto-extension of held locks
	closing   chan struct{} // closed when Close starts
	cfg       config
	clock     clock.Clock
	closeOnce sync.Once
	stats     struct {
		fenced, fastPath atomic.Int64 // fenced acquisitions; those done in one round trip (F2)
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
	c := &Client{pools: slices.Clone(pools), cfg: cfg, clock: clock.Real, closing: make(chan struct{})}
	c.ext.c = c
	c.wait = newWaiters(pools)
	c.nodes = make([]*pipe.Node, len(pools))
	for i, p := range pools {
		c.nodes[i] = pipe.NewNode(p, acquireSrc, releaseSrc, extendSrc, fenceSrc)
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
// node never delays it.
func (c *Client) TryLock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	cfg, err := c.callConfig(name, opts)
	if err != nil {
		return nil, err
	}
	return c.attempt(ctx, name, &cfg)
}

// Lock takes the lock called name, making up to WithTries attempts with the
// WithRetryDelay pause between them, until ctx ends (ALGORITHM.md A9). While
// the lock is held by someone else, a release wakes it at once: it does not
// wait out the pause. Its errors are TryLock's, counting the attempts.
func (c *Client) Lock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	cfg, err := c.callConfig(name, opts)
	if err != nil {
		return nil, err
	}
	var (
		qe   *QuorumError                  // the last attempt's failure
		wake <-chan struct{}               // releases of name, once waiting for them
		turn = func() bool { return true } // whether this waiter may attempt now
	)
	for attempt := 1; ; attempt++ {
		if turn() {
			l, err := c.attempt(ctx, name, &cfg)
			if err == nil {
				return l, nil
			}
			var last *QuorumError
			if !errors.As(err, &last) {
				return nil, err
			}
			qe = last.after(qe)
		}
		qe.Attempts = attempt
		if attempt >= cfg.tries || qe.ctxErr != nil || errors.Is(qe, ErrClosed) {
			return nil, qe
		}
		if wake == nil && qe.Refused > 0 { // held elsewhere: wait for its release, in line
			ch, stop := c.wait.wait(name)
			defer stop()
			t := c.line.join(name, ch)
			defer c.line.leave(name, t)
			wake, turn = ch, func() bool { return c.line.head(name, t) }
		}
		if l, err := c.pauseFor(ctx, name, &cfg, attempt, wake, turn, qe); l != nil || err != nil {
			return l, err
		}
	}
}

// pauseFor waits out the pause after attempt. A release wakes it for an
// extra attempt (when it is this waiter's turn), which does not count
// against WithTries: only the pauses do, so Lock gives up after about as
// long as it would polling alone. It returns the lock, or the error when
// ctx ended, or neither when the pause ran out.
func (c *Client) pauseFor(ctx context.Context, name string, cfg *config, attempt int, wake <-chan struct{}, turn func() bool, qe *QuorumError) (*Lock, error) {
	timeout := make(chan struct{})
	t := c.clock.AfterFunc(cfg.retryDelay(attempt), func() { close(timeout) })
	defer t.Stop()
	for {
		select {
		case <-timeout:
			return nil, nil
		case <-wake:
			if !turn() {
				continue
			}
			l, err := c.attempt(ctx, name, cfg)
			if err == nil {
				return l, nil
			}
			var last *QuorumError
			if errors.As(err, &last) {
				*qe = *last.after(qe)
				qe.Attempts = attempt
			}
		case <-ctx.Done():
			qe.ctxErr = ctx.Err()
			return nil, qe
		}
	}
}

// attempt is one acquisition (ALGORITHM.md A1-A8, A10).
func (c *Client) attempt(ctx context.Context, name string, cfg *config) (*Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.unsent("lock", name, ErrNotAcquired, err)
	}
	// A1: 128 random bits, new for every attempt. The key and value are
	// boxed once: one argument list serves every node, and the release.
	var key, value any = LockKey(name), rand.Text()
	// Without fencing, SET NX PX GET (Redis 7) is the whole acquisition,
	// with no script to run: nil grants, a value refuses, and a key of
	// another type answers WRONGTYPE. Fencing needs the script's INCR (F1).
	cmd, args := "SET", []any{key, value, "NX", "PX", cfg.ttl.Milliseconds(), "GET"}
	if cfg.fencing {
		cmd, args = "EVALSHA", []any{acquireHash, 2, key, CounterKey(name), value, cfg.ttl.Milliseconds(), "1"}
	}
	// A2: T1 is read right before the requests are queued for writing;
	// the connections are already open, and no back-off follows.
	t1 := c.clock.Now()
	r := c.run(ctx, nil, 0, cfg.nodeTimeout, cmd, args)

	ok := r.ok()
	var token uint64
	var fenceErrs *multierror.Error
	var fenceCtxErr error
	if ok && cfg.fencing {
		token, ok, fenceErrs, fenceCtxErr = c.fence(ctx, name, key, value, cfg.nodeTimeout, r)
	}
	// A7: Q grants (and Q nodes holding the token, F3), and validity left
	// when the last reply used arrived.
	until := t1.Add(cfg.ttl - driftAllowance(cfg.ttl, cfg.driftFactor))
	expired := !c.clock.Now().Before(until)
	if ok && !expired {
		return newLock(c, name, key, value, token, cfg, t1, until), nil
	}
	// A8: a failed attempt releases its value everywhere it may have been
	// applied: grants, errors, timeouts and nodes still silent (A4). A
	// definite refusal wrote nothing. Each release is queued behind the
	// acquisition on that node's connection, so it runs after it, and
	// nobody waits for it.
	release := []any{releaseHash, 1, key, value, "0"}
	for i, s := range r.slots {
		if s.res != quorum.Refused {
			c.nodes[i].Do(pipe.Request{Cmd: "EVALSHA", Args: release, Timeout: cfg.nodeTimeout})
		}
	}
	qe := r.quorumError("lock", name, ErrNotAcquired)
	if fenceErrs != nil {
		qe.Nodes = appendNodeErrors(qe.Nodes, fenceErrs)
	}
	if fenceCtxErr != nil {
		qe.ctxErr = fenceCtxErr
	}
	qe.Expired = r.ok() && expired
	qe.Fencing = r.ok() && !ok && !expired
	return nil, qe
}
