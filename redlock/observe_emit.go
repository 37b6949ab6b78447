package redlock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// Where the events of observe.go are made. Every site is guarded by
// observed(), and builds its Event only inside that check: with no observer
// the seam costs one length check per event (measured in the README's
// Observability section). Each event is emitted after its outcome is
// decided, from values the call has already computed, so observing never
// changes an outcome; the count of locks held they carry is exact
// (ALGORITHM.md O1), and they hold no secret (O2).

// observed reports whether the client has observers.
func (c *Client) observed() bool { return len(c.cfg.observers) > 0 }

// emit tells every observer of e, in the order they were given.
func (c *Client) emit(e Event) {
	for _, o := range c.cfg.observers {
		o.Observe(e)
	}
}

// lockCall is a Lock call's bookkeeping for its EventLock: the attempts it
// made and the last one's event. It is set on the call's config only when
// the client is observed.
type lockCall struct {
	attempts int
	last     Event
}

// observeLock runs a Lock call and reports it (EventLock).
func (c *Client) observeLock(ctx context.Context, name string, cfg *config, k contender) (*Lock, error) {
	call := &lockCall{}
	cfg.call = call
	start := c.clock.Now()
	l, err := c.contend(ctx, k, cfg)
	e := call.last // the last attempt's figures and token
	e.Kind, e.Ctx, e.Name = EventLock, ctx, name
	e.Outcome, e.Attempts, e.InLock, e.HeldDelta, e.Err = outcomeOf(err), call.attempts, false, 0, err
	e.Latency = c.clock.Now().Sub(start)
	c.emit(e)
	return l, err
}

// attempted reports one acquisition attempt (EventAttempt): err nil is a
// grant, which starts holding a lock.
func (c *Client) attempted(ctx context.Context, name string, cfg *config, t quorum.Tally, latency time.Duration, token uint64, err error) {
	e := Event{
		Kind: EventAttempt, Ctx: ctx, Name: name, Outcome: outcomeOf(err),
		Attempts: 1, InLock: cfg.call != nil, Latency: latency, Token: token, Err: err,
	}
	e.setTally(t)
	if err == nil {
		e.HeldDelta = 1
	}
	if cfg.call != nil {
		cfg.call.attempts++
		cfg.call.last = e
	}
	c.emit(e)
}

// setTally copies a round's figures.
func (e *Event) setTally(t quorum.Tally) {
	e.Granted, e.Refused, e.Failed, e.Nodes, e.Quorum = t.Granted, t.Refused, t.Failed, t.N, t.Q
}

// observeRound reports an Extend or an Unlock (kind) that returned err; r
// is its round, nil when nothing was sent; start is when it was sent.
func (l *Lock) observeRound(ctx context.Context, kind EventKind, auto bool, r *round, start time.Time, heldDelta int, err error) {
	c := l.c
	e := Event{Kind: kind, Ctx: ctx, Name: l.name, Outcome: outcomeOf(err), Auto: auto, Token: l.token, HeldDelta: heldDelta, Err: err}
	if r != nil {
		e.setTally(r.tally)
		e.Latency = c.clock.Now().Sub(start)
	} else {
		e.Nodes, e.Quorum = len(c.nodes), quorum.Majority(len(c.nodes))
	}
	c.emit(e)
}

// observeLost reports the end of a held lock that was not released by
// Unlock (EventLost): cause is the *LockLostError Err() now returns.
func (l *Lock) observeLost(cause error) {
	e := Event{Kind: EventLost, Ctx: context.Background(), Name: l.name, Token: l.token, HeldDelta: -1, Err: cause, Cause: LostExpired}
	var lle *LockLostError
	if errors.As(cause, &lle) && lle.kind != 0 {
		e.Cause = lle.kind
	}
	l.c.emit(e)
}

// unlock releases l.mu and then reports the loss that endLocked recorded
// meanwhile, if any: observers are never called with l.mu held.
func (l *Lock) unlock() {
	lost := l.lost
	l.lost = nil
	l.mu.Unlock()
	if lost != nil {
		l.observeLost(lost)
	}
}

// outcomeOf says how a call that returned err ended.
func outcomeOf(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	if qe, ok := err.(*QuorumError); ok {
		switch {
		case qe.closed || qe.ctxErr != nil:
			return OutcomeCanceled
		case qe.Expired:
			return OutcomeExpired
		case qe.Failed >= qe.N-qe.Quorum+1 || qe.Fencing:
			return OutcomeFailed
		case qe.Refused > 0:
			return OutcomeRefused
		}
		return OutcomeFailed
	}
	switch {
	case errors.Is(err, ErrNotHeld): // refused without asking the nodes (E1)
		return OutcomeRefused
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		return OutcomeCanceled
	}
	return OutcomeFailed
}

// nodeFailed reports one failed request to node i (EventNodeFailure): err
// is what the pipe or the reply said, tau the request's deadline (0: the
// node timeout, unknown here). replyErr marks a reply that the node sent
// but that made no sense for the request.
func (c *Client) nodeFailed(ctx context.Context, i int, tau time.Duration, err error, replyErr bool) {
	kind := FailureReply
	if !replyErr {
		kind = failureKind(err)
	}
	addr := c.nodes[i].Addr()
	c.emit(Event{Kind: EventNodeFailure, Ctx: ctx, Node: addr, Failure: kind, Err: &NodeError{Addr: addr, Err: nodeCause(err, tau)}})
}

// failureKind classifies a request's failure.
func failureKind(err error) FailureKind {
	var ce *pipe.ConnectError
	var re redis.Error
	switch {
	case errors.As(err, &ce):
		return FailureConnection
	case errors.Is(err, pipe.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return FailureTimeout
	case errors.Is(err, pipe.ErrClosed):
		return FailureClosed
	case errors.Is(err, pipe.ErrNoScript):
		return FailureNoScript
	case errors.As(err, &re):
		return FailureReply
	}
	return FailureConnection // a broken connection: EOF, reset, a write that failed
}

// nodeCause turns a request's failure into the error a *NodeError holds:
// a node timeout becomes ErrNodeTimeout, never the caller's
// DeadlineExceeded. tau is the request's deadline, 0 when unknown.
func nodeCause(err error, tau time.Duration) error {
	switch {
	case errors.Is(err, pipe.ErrTimeout) && tau > 0:
		return fmt.Errorf("%w: no answer within %v", ErrNodeTimeout, tau)
	case errors.Is(err, pipe.ErrTimeout):
		return fmt.Errorf("%w: no answer within the node timeout", ErrNodeTimeout)
	case errors.Is(err, context.DeadlineExceeded):
		// A connection's set-up that ran out of time (its dial timeout):
		// keep what it says (which step, which timeout), as a node
		// timeout, never as the caller's DeadlineExceeded.
		return fmt.Errorf("%w: %s", ErrNodeTimeout, err.Error())
	}
	return err
}

// bgHandler receives the replies of the requests nobody waits for (the
// undo of a failed attempt, a waiter leaving the line) when the client is
// observed, to report their failures.
type bgHandler struct{ c *Client }

// Reply implements pipe.Handler.
func (h *bgHandler) Reply(i int, _ any, err error) {
	if err != nil {
		h.c.nodeFailed(context.Background(), i, 0, err, false)
	}
}

// background returns the handler of requests nobody waits for: nil when
// nobody observes the client, so they cost nothing more.
func (c *Client) background() pipe.Handler {
	if !c.observed() {
		return nil
	}
	return &c.bg
}

// reconnected reports that the connection to the node at addr died (err
// says why) and is being replaced (EventReconnect).
func (c *Client) reconnected(addr string, err error) {
	c.emit(Event{Kind: EventReconnect, Ctx: context.Background(), Node: addr, Err: &NodeError{Addr: addr, Err: nodeCause(err, 0)}})
}

// errObserverPerCall is callConfig's error for WithObserver given to a call.
var errObserverPerCall = fmt.Errorf("%w: WithObserver given to a call: it is a client option, give it to New", ErrInvalidOption)
