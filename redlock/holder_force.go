package redlock

import (
	"context"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-multierror"
)

// ForceUnlock removes lock name on every node, whoever holds it: the
// operator's break-glass for a lock whose holder is stuck (ALGORITHM.md
// M3). Where waiters are in line, the lock passes to the first of them, as
// a release does (L2); elsewhere the key is deleted and the release is
// announced, so that waiters retry at once (R5). A reservation for the
// next in line is left alone (it names no holder and lapses within a few
// node timeouts), and so are the fencing counter, which must never go
// back (F4), and the line, whose entries belong to live waiters (L3).
//
// It breaks mutual exclusion for the current holder: that holder is not
// told, and keeps believing it holds the lock until its Until() (with
// auto-extension, until its next extension fails and Done closes), while
// someone else may take it at once. Only fencing tokens checked by the
// resource (WithFencing, F5) protect the resource from it then. Read
// Client.Holder first to see whom you are about to break.
//
// It returns on how many nodes it removed a lock, once every node answered
// or failed (each within the node timeout), and the nodes' failures as a
// *multierror.Error of *NodeError, or nil; the count stands even when some
// nodes failed. It returns an error wrapping ErrInvalidOption for a bad
// name, ErrClosed after Close, or ctx's error when ctx ended.
func (c *Client) ForceUnlock(ctx context.Context, name string) (int, error) {
	if err := validName(name); err != nil {
		return 0, err
	}
	if err := c.closed(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tau := c.cfg.nodeTimeout
	g := c.gather(ctx, tau, "EVAL", []any{forceSrc, 2, LockKey(name), LineKey(name), reserveFor(tau).Milliseconds()})
	removed := 0
	var errs *multierror.Error
	for i, n := range c.nodes {
		if g.errs[i] != nil {
			if g.ctxErr == nil {
				errs = appendNodeErrors(errs, nodeError(n.Addr(), g.errs[i], tau))
			}
			continue
		}
		if k, err := redis.Int(g.replies[i], nil); err != nil {
			errs = appendNodeErrors(errs, &NodeError{Addr: n.Addr(), Err: err})
		} else {
			removed += k
		}
	}
	if g.ctxErr != nil {
		return removed, g.ctxErr
	}
	return removed, errs.ErrorOrNil()
}
