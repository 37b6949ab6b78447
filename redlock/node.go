package redlock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/clock"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// call runs script s on node i with a hard deadline tau on the whole
// exchange, connection wait and dial included (ALGORITHM.md A3), and turns
// the reply into a quorum result: a positive integer is a grant (its value
// kept: the fencing counter), 0 a refusal, anything else a failure (A4).
// The deadline is detached from the caller's context, so a caller that gives
// up never leaves a request half-cancelled; the round itself returns early.
// If w is set, it records when the request was about to be written (A2).
func (c *Client) call(ctx context.Context, i int, tau time.Duration, w *firstWrite, s *redis.Script, keysAndArgs ...any) quorum.Reply[int64] {
	p := c.pools[i]
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tau)
	defer cancel()
	conn, err := p.Get(nctx)
	if err == nil {
		defer conn.Close()
		if w != nil {
			w.mark()
		}
		var n int64
		if n, err = redis.Int64(s.DoContext(nctx, conn, keysAndArgs...)); err == nil {
			if n > 0 {
				return quorum.Reply[int64]{Result: quorum.Granted, Value: n}
			}
			return quorum.Reply[int64]{Result: quorum.Refused}
		}
	}
	if isTimeout(err) {
		err = fmt.Errorf("%w: no answer within %v (%v)", ErrNodeTimeout, tau, err)
	}
	return quorum.Reply[int64]{Result: quorum.Failed, Err: &NodeError{Addr: p.Addr(), Err: err}}
}

// isTimeout reports whether err is the node deadline running out, so that
// it is not mistaken for the caller's context.DeadlineExceeded.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// nodeErrors aggregates the failures among replies, or returns nil.
func nodeErrors[T any](replies []quorum.Reply[T]) *multierror.Error {
	var all *multierror.Error
	for _, r := range replies {
		if r.Err != nil {
			all = multierror.Append(all, r.Err)
		}
	}
	return all
}

// firstWrite records the earliest moment a request of a round was about to
// be written: T1 of A2 and Te of E3. Connections were taken from the pools by
// then, so a slow dial does not eat the validity.
type firstWrite struct {
	clock clock.Clock
	base  time.Time
	min   atomic.Int64 // nanoseconds after base; MaxInt64 until a mark
}

func newFirstWrite(c clock.Clock) *firstWrite {
	w := &firstWrite{clock: c, base: c.Now()}
	w.min.Store(math.MaxInt64)
	return w
}

func (w *firstWrite) mark() {
	d := int64(w.clock.Now().Sub(w.base))
	for {
		old := w.min.Load()
		if d >= old || w.min.CompareAndSwap(old, d) {
			return
		}
	}
}

// at returns the earliest mark, or the round's start when nothing was written.
func (w *firstWrite) at() time.Time {
	if m := w.min.Load(); m != math.MaxInt64 {
		return w.base.Add(time.Duration(m))
	}
	return w.base
}
