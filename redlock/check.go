package redlock

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/pool"
)

// CheckTimeout bounds Check's requests to one node.
const CheckTimeout = time.Second

// Check reads each node's role and configuration and reports what breaks the
// model the lock's guarantees rest on (ALGORITHM.md N1-N3): a node that is a
// replica (N1), an eviction policy other than noeviction (N3), and, when the
// client's default options include WithFencing, AOF off or appendfsync not
// "always" (N2: the counters must survive a restart); each wraps
// ErrUnsafeDeployment. A node whose ACL user may not publish on the release
// channels, or use the line of waiters, is reported wrapping ErrDegraded
// (R5, L8: safe, but waiters poll, or are served in no order). It
// returns nil when every node is fine; otherwise a *multierror.Error of
// *NodeError, one per node and finding, or the error met reading the node
// (some managed Redis services disable CONFIG). It asks all nodes
// in parallel, each within CheckTimeout, and waits for all of them.
func (c *Client) Check(ctx context.Context) error {
	found := make([][]error, len(c.pools))
	var wg sync.WaitGroup
	for i, p := range c.pools {
		wg.Go(func() { found[i] = c.checkNode(ctx, p) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	var all *multierror.Error
	for i, errs := range found {
		for _, err := range errs {
			all = appendNodeErrors(all, &NodeError{Addr: c.pools[i].Addr(), Err: err})
		}
	}
	return all.ErrorOrNil()
}

func (c *Client) checkNode(ctx context.Context, p pool.Pool) []error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	var errs []error
	info, err := redis.String(pool.Do(ctx, p, "INFO", "replication"))
	if err != nil {
		return []error{fmt.Errorf("INFO replication: %w", err)}
	}
	master := infoField(info, "role") == "master"
	if !master {
		errs = append(errs, fmt.Errorf("%w: N1: role is %q, want an independent master", ErrUnsafeDeployment, infoField(info, "role")))
	}
	// R5: releases announce themselves on a channel per name. A user who
	// may not use it keeps the lock safe, but waiters poll. The probe's
	// channel belongs to no lock (names are never empty), so it wakes
	// nobody.
	if _, err := pool.Do(ctx, p, "PUBLISH", LockKey("")+releasedSuffix, "check"); err != nil {
		errs = append(errs, fmt.Errorf("%w: may not publish on the release channels (%v): waiters poll instead of being woken on release; grant the ACL user &%s*", ErrDegraded, err, KeyPrefix))
	}
	// L8: the line of waiters needs HSET, HGETALL, HDEL and TIME. Without
	// them the scripts fall back to plain Redlock: safe, not fair. The
	// probe's line belongs to no lock, and is left empty.
	// A replica refuses the probe's writes (READONLY): N1 already says
	// what is wrong with it.
	if _, err := pool.Do(ctx, p, "EVAL", lineProbe, 1, LineKey("")); err != nil && master {
		errs = append(errs, fmt.Errorf("%w: may not use the line of waiters (%v): waiters are served in no order; grant the ACL user +hset +hgetall +hget +hdel +time", ErrDegraded, err))
	} else if _, err := pool.Do(ctx, p, "HGET", GrantsKey(""), "check"); err != nil && master {
		// L8, L12: without HGET alone the line works, but a release
		// reserves the lock instead of handing it over.
		errs = append(errs, fmt.Errorf("%w: may not read the line's hand-overs (%v): a release reserves instead of handing the lock over, a round trip more per wait; grant the ACL user +hget", ErrDegraded, err))
	}
	want := map[string]string{"maxmemory-policy": "noeviction"}
	rule := map[string]string{"maxmemory-policy": "N3: an evicted lock key is an early release"}
	if c.cfg.fencing {
		want["appendonly"], rule["appendonly"] = "yes", "N2: fencing counters must survive a restart"
		want["appendfsync"], rule["appendfsync"] = "always", "N2: fencing counters must survive a crash"
	}
	for _, param := range []string{"maxmemory-policy", "appendonly", "appendfsync"} {
		w, ok := want[param]
		if !ok {
			continue
		}
		kv, err := redis.StringMap(pool.Do(ctx, p, "CONFIG", "GET", param))
		if err != nil {
			errs = append(errs, fmt.Errorf("CONFIG GET %s: %w", param, err))
			continue
		}
		if got := kv[param]; got != w {
			errs = append(errs, fmt.Errorf("%w: %s is %q, want %q (%s)", ErrUnsafeDeployment, param, got, w, rule[param]))
		}
	}
	return errs
}

// lineProbe uses, on a line that belongs to no lock, every command the
// line of waiters needs.
const lineProbe = `redis.call('HSET', KEYS[1], 'check', '0:0')
redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], 'check')
redis.call('TIME')
return 1`

// infoField returns the value of field in an INFO reply, or "".
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
