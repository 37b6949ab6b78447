package redlock

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/quorum"
)

// fence turns the grants of Phase A into a token (ALGORITHM.md F1-F3). Each
// granting node returned its counter after INCR; t is the largest. When Q of
// them returned exactly t, those Q nodes hold C >= t: the fast path, no
// second round trip (F2). Otherwise Phase B raises C to t on the granting
// nodes that are behind, only where our key is still there (F3). It returns
// t, whether Q nodes are known to hold C >= t while holding our key, and the
// failures of Phase B.
func (c *Client) fence(ctx context.Context, name, value string, tau time.Duration, grants []quorum.Reply[int64], q int) (uint64, bool, *multierror.Error) {
	var t int64
	for _, r := range grants {
		if r.Result == quorum.Granted {
			t = max(t, r.Value)
		}
	}
	var behind []int
	have := 0
	for _, r := range grants {
		if r.Result != quorum.Granted {
			continue
		}
		if r.Value == t {
			have++
		} else {
			behind = append(behind, r.Node)
		}
	}
	c.stats.fenced.Add(1)
	if have >= q {
		c.stats.fastPath.Add(1)
		return uint64(t), true, nil
	}
	need := q - have
	if need > len(behind) {
		return uint64(t), false, nil
	}
	tok := strconv.FormatInt(t, 10)
	out := quorum.Run(ctx, quorum.Round[int64]{
		N: len(behind), Need: need,
		Call: func(i int) quorum.Reply[int64] {
			return c.call(ctx, behind[i], tau, nil, fenceScript, LockKey(name), CounterKey(name), value, tok)
		},
	})
	out.Settle(true)
	return uint64(t), out.OK(), nodeErrors(out.Replies)
}
