package redlock

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/go-multierror"
)

// fence turns the grants of Phase A into a token (ALGORITHM.md F1-F3). Each
// granting node returned its counter after INCR; t is the largest. When Q of
// them returned exactly t, those Q nodes hold C >= t: the fast path, no
// second round trip (F2). Otherwise Phase B raises C to t on the granting
// nodes that are behind, only where our key is still there (F3). It returns
// t, whether Q nodes are known to hold C >= t while holding our key, the
// failures of Phase B, and the caller's context error if it cut Phase B short.
// key is the lock key (a semaphore's: the slot it won, whose grants alone
// count, S5) and counter the fencing counter's key.
func (c *Client) fence(ctx context.Context, key, counter, value any, tau time.Duration, a *round) (uint64, bool, *multierror.Error, error) {
	var t int64
	for i, s := range a.slots {
		if a.won(i) {
			t = max(t, s.val)
		}
	}
	var behind []int
	have := 0
	for i, s := range a.slots {
		if !a.won(i) {
			continue
		}
		if s.val == t {
			have++
		} else {
			behind = append(behind, i)
		}
	}
	c.stats.fenced.Add(1)
	if have >= a.tally.Q {
		c.stats.fastPath.Add(1)
		return uint64(t), true, nil, nil
	}
	need := a.tally.Q - have
	if need > len(behind) {
		return uint64(t), false, nil, nil
	}
	args := []any{fenceHash, 2, key, counter, value, strconv.FormatInt(t, 10)}
	b := c.run(ctx, behind, need, tau, "EVALSHA", args)
	return uint64(t), b.ok(), b.errors(), b.ctxErr
}
