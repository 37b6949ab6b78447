package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/clock"
	"github.com/quorumlock/quorumlock/internal/quorum"
	"github.com/quorumlock/quorumlock/pool"
)

// Client takes locks on a fixed set of independent Redis nodes. It is safe
// for concurrent use. It does not own the pools: close them after the last
// call.
type Client struct {
	pools []pool.Pool
	cfg   config
	clock clock.Clock
	stats struct {
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
	c := &Client{pools: slices.Clone(pools), cfg: cfg, clock: clock.Real}
	return c, nil
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
// WithRetryDelay pause between them, until ctx ends (ALGORITHM.md A9). Its
// errors are TryLock's, counting the attempts.
func (c *Client) Lock(ctx context.Context, name string, opts ...Option) (*Lock, error) {
	cfg, err := c.callConfig(name, opts)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		l, err := c.attempt(ctx, name, &cfg)
		if err == nil {
			return l, nil
		}
		var qe *QuorumError
		if !errors.As(err, &qe) {
			return nil, err
		}
		qe.Attempts = attempt
		if attempt >= cfg.tries || qe.ctxErr != nil {
			return nil, qe
		}
		if err := c.sleep(ctx, cfg.retryDelay(attempt)); err != nil {
			qe.ctxErr = err
			return nil, qe
		}
	}
}

// attempt is one acquisition (ALGORITHM.md A1-A8, A10).
func (c *Client) attempt(ctx context.Context, name string, cfg *config) (*Lock, error) {
	n := len(c.pools)
	if err := ctx.Err(); err != nil {
		return nil, newQuorumError("lock", name, quorum.NewTally(n), ErrNotAcquired, err, nil)
	}
	value := rand.Text() // A1: 128 random bits, new for every attempt
	key := LockKey(name)
	ttlMs := cfg.ttl.Milliseconds()
	fence := "0"
	if cfg.fencing {
		fence = "1"
	}
	t1 := newFirstWrite(c.clock)
	// sent[i] closes when the request to node i has returned: a release to
	// node i waits for it, so a straggling SET can never land after our
	// DEL and leave a ghost key for a whole TTL.
	sent := make([]chan struct{}, n)
	for i := range sent {
		sent[i] = make(chan struct{})
	}
	out := quorum.Run(ctx, quorum.Round[int64]{
		N: n,
		Call: func(i int) quorum.Reply[int64] {
			defer close(sent[i])
			return c.call(ctx, i, cfg.nodeTimeout, t1, acquireScript, key, CounterKey(name), value, ttlMs, fence)
		},
		After: func(r quorum.Reply[int64], ok bool) {
			// A8: a failed attempt releases its value everywhere it may
			// have been applied: grants, errors and timeouts (A4), late
			// ones included. A definite refusal wrote nothing.
			if !ok && r.Result != quorum.Refused {
				c.releaseNode(ctx, r.Node, cfg.nodeTimeout, key, value)
			}
		},
	})
	defer out.Settle(false) // every path that does not return the lock releases it (A8)

	ok := out.OK()
	nodeErrs := nodeErrors(out.Replies)
	var token uint64
	if ok && cfg.fencing {
		var fenceErrs *multierror.Error
		token, ok, fenceErrs = c.fence(ctx, name, value, cfg.nodeTimeout, out.Replies, out.Tally.Q)
		if fenceErrs != nil {
			nodeErrs = multierror.Append(nodeErrs, fenceErrs)
		}
	}
	// A7: Q grants (and Q nodes holding the token, F3), and validity left
	// when the last reply used arrived.
	until := t1.at().Add(cfg.ttl - driftAllowance(cfg.ttl, cfg.driftFactor))
	expired := !c.clock.Now().Before(until)
	if ok && !expired {
		out.Settle(true)
		return newLock(c, name, value, token, cfg, t1.at(), until, sent), nil
	}
	qe := newQuorumError("lock", name, out.Tally, ErrNotAcquired, out.Err, nodeErrs)
	qe.Expired = ok && expired
	if out.OK() && !ok {
		qe.Fencing = true
	}
	return nil, qe
}

// releaseNode deletes value from node i if it is still there, on a context
// detached from the caller's and bounded by the node timeout (A8). Its
// failure is not reported: the key then expires with its TTL.
func (c *Client) releaseNode(ctx context.Context, i int, tau time.Duration, key, value string) {
	c.call(ctx, i, tau, nil, releaseScript, key, value)
}

// sleep waits d or until ctx ends, on the client's clock.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	done := make(chan struct{})
	t := c.clock.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
