package redlock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// round is one script run on each of a set of nodes, decided by quorum as
// the replies arrive (ALGORITHM.md A6): the replies come in through Reply,
// from the nodes' reader goroutines, and the caller waits for done. Once
// decided, later replies are ignored, so the slots are stable.
type round struct {
	c      *Client
	ctx    context.Context // the caller's, for the events of its nodes' failures
	nodes  []int           // the client's node index of each slot
	tau    time.Duration
	setGet bool // the replies are SET NX GET's: nil granted, a value refused
	choose bool // the replies are sem.lua take's: {slot, counter} granted, 0 refused (S2)

	mu      sync.Mutex
	tally   quorum.Tally
	picks   quorum.Choices // with choose: the grants per slot
	slots   []slot
	decided bool
	done    chan struct{}
	ctxErr  error // the caller's context ended the wait

	answered int                          // replies in, before the decision or after
	then     func(finals []quorum.Result) // whenAnswered's, until every node answered
	// finals holds each node's answer, also one that came after the
	// decision (the slots are not written then: callers read them
	// unlocked once the round is decided); in finalBuf up to 8 nodes.
	finals   []quorum.Result
	finalBuf [8]quorum.Result
}

type slot struct {
	res    quorum.Result
	val    int64
	err    error
	choice int // with choose: the semaphore slot granted
}

// Reply implements pipe.Handler: a positive integer is a grant (its value
// kept: the fencing counter), 0 a refusal, anything else a failure (A4).
func (r *round) Reply(i int, v any, err error) {
	s := slot{res: quorum.Failed, err: err}
	if err == nil && r.setGet {
		switch v.(type) {
		case nil: // the key was free, and is ours now
			s = slot{res: quorum.Granted, val: 1}
		case []byte: // the key holds another value
			s = slot{res: quorum.Refused}
		default:
			s.err = fmt.Errorf("unexpected reply %T to SET", v)
		}
	} else if err == nil && r.choose {
		s = chosen(v)
	} else if err == nil {
		if n, ierr := redis.Int64(v, nil); ierr != nil {
			s.err = ierr
		} else if n > 0 {
			s = slot{res: quorum.Granted, val: n}
		} else {
			s = slot{res: quorum.Refused}
		}
	}
	if s.res == quorum.Failed && r.c.observed() {
		// Every failed request is reported, also once the round is
		// decided: the pipe answers each request exactly once.
		r.c.nodeFailed(r.ctx, r.node(i), r.tau, s.err, err == nil)
	}
	r.mu.Lock()
	if !r.decided && r.slots[i].res == quorum.Pending {
		r.slots[i] = s
		r.tally.Add(s.res)
		if r.choose && s.res == quorum.Granted {
			r.picks.Add(s.choice)
		}
		if r.decidedLocked() {
			r.finishLocked()
		}
	}
	r.finals[i] = s.res
	if s.res == quorum.Failed && neverWritten(s.err) {
		// No connection could be made: the request was never written, and
		// what follows the answers (an undo, a leave, a claim's count)
		// takes it as a refusal: nothing of it is on the node (A8, L12).
		r.finals[i] = quorum.Refused
	}
	r.answered++
	then, finals := r.answeredLocked()
	r.mu.Unlock()
	if then != nil {
		then(finals)
	}
}

// neverWritten reports whether err says that no connection could be made:
// the request was never written (A8). A function of its own: the target of
// errors.As would otherwise be allocated for every reply.
func neverWritten(err error) bool {
	var notSent *pipe.ConnectError
	return errors.As(err, &notSent)
}

// whenAnswered calls then once every node has answered the round (the pipe
// answers each request exactly once, at its deadline at the latest), at
// once if they all have, with each node's answer, before the decision or
// after it: L4's leave goes only where the waiter's take was not granted,
// and L12's undo only where it was not refused.
func (r *round) whenAnswered(then func(finals []quorum.Result)) {
	r.mu.Lock()
	r.then = then
	then, finals := r.answeredLocked()
	r.mu.Unlock()
	if then != nil {
		then(finals)
	}
}

// answeredLocked takes whenAnswered's function once every node answered,
// with the answers.
func (r *round) answeredLocked() (func([]quorum.Result), []quorum.Result) {
	if r.then == nil || r.answered < len(r.slots) {
		return nil, nil
	}
	then := r.then
	r.then = nil
	return then, r.finals // written no more: every node answered
}

// decidedLocked reports whether the round's outcome is known: with choose,
// when one slot has Q grants or none can reach Q (S2).
func (r *round) decidedLocked() bool {
	if r.choose {
		return r.picks.Decided(r.tally)
	}
	return r.tally.Decided()
}

// chosen reads sem.lua take's reply: {slot, counter} grants that slot, 0
// refuses (S2).
func chosen(v any) slot {
	if n, err := redis.Int64(v, nil); err == nil && n == 0 {
		return slot{res: quorum.Refused}
	}
	pair, err := redis.Int64s(v, nil)
	if err == nil && (len(pair) != 2 || pair[0] < 0 || pair[1] <= 0) {
		err = fmt.Errorf("unexpected reply %v to the semaphore's take", pair)
	}
	if err != nil {
		return slot{res: quorum.Failed, err: err}
	}
	return slot{res: quorum.Granted, choice: int(pair[0]), val: pair[1]}
}

// won reports whether node slot i granted what the round decided: any grant,
// or with choose, a grant of the slot with the most grants (S2).
func (r *round) won(i int) bool {
	s := r.slots[i]
	return s.res == quorum.Granted && (!r.choose || s.choice == r.picks.Best)
}

func (r *round) finishLocked() {
	r.decided = true
	close(r.done)
}

// run sends cmd args to the nodes (nil: all) and returns once the round is
// decided (need grants of them, 0 meaning a majority), the node timeout
// passed, or ctx ended. Each request has the hard deadline tau (A3). cmd is
// EVALSHA (a script: a positive integer grants) or SET (NX GET).
func (c *Client) run(ctx context.Context, nodes []int, need int, tau time.Duration, cmd string, args []any) *round {
	r := c.newRound(nodes, need, tau, cmd)
	return r.send(ctx, cmd, args)
}

// runChoosing sends a semaphore's take (sem.lua) to every node; the round
// succeeds when Q nodes granted the same slot (S2).
func (c *Client) runChoosing(ctx context.Context, tau time.Duration, args []any) *round {
	r := c.newRound(nil, 0, tau, "EVALSHA")
	r.choose, r.picks = true, quorum.NewChoices()
	return r.send(ctx, "EVALSHA", args)
}

func (c *Client) newRound(nodes []int, need int, tau time.Duration, cmd string) *round {
	n := len(c.nodes)
	if nodes != nil {
		n = len(nodes)
	}
	r := &round{c: c, nodes: nodes, tau: tau, setGet: cmd == "SET", tally: quorum.NewTally(n), slots: make([]slot, n), done: make(chan struct{})}
	if n <= len(r.finalBuf) {
		r.finals = r.finalBuf[:n]
	} else {
		r.finals = make([]quorum.Result, n)
	}
	if need > 0 {
		r.tally = quorum.NewTallyNeed(n, need)
	}
	return r
}

// send writes the round's requests and waits until it is decided.
func (r *round) send(ctx context.Context, cmd string, args []any) *round {
	c := r.c
	r.ctx = ctx // set before any request is sent: replies read it (observer events)
	deadline := time.Now().Add(r.tau)
	// A lone caller writes each request itself when the node's connection
	// is idle (measured faster than handing half of them to the writer
	// goroutines); concurrent callers' requests are batched by the writers.
	if len(r.slots) == 1 && ctx.Done() == nil {
		// One node, and a context that never ends: the caller has nothing
		// to wait for but this reply, so it reads it itself on an idle
		// connection (pipe.Call), bounded by the deadline (C1, A3). That
		// saves the hand-offs through the reader goroutine: about half of
		// a lone TryLock+Unlock pair on one node. With a context that can
		// end, the caller waits in the select below instead: every call
		// ends within its context ("What is guaranteed"), and a read on
		// the socket cannot be cut short by one.
		c.nodes[r.node(0)].Call(pipe.Request{Cmd: cmd, Args: args, Deadline: deadline, H: r})
	} else {
		r.queue(deadline, cmd, args)
	}
	await(ctx, r.done, deadline, r.finish)
	return r
}

// post writes the round's requests and returns: the caller learns the
// outcome through whenAnswered. ctx is for the events of node failures.
func (r *round) post(ctx context.Context, cmd string, args []any) *round {
	r.ctx = ctx
	r.queue(time.Now().Add(r.tau), cmd, args)
	return r
}

// queue hands the round's requests to the nodes' connections (C1).
func (r *round) queue(deadline time.Time, cmd string, args []any) {
	for i := range r.slots {
		r.c.nodes[r.node(i)].Do(pipe.Request{Cmd: cmd, Args: args, Deadline: deadline, H: r, Node: i})
	}
}

// await waits until done is closed, or until ctx ends (finish(ctx.Err())),
// or until a backstop just past deadline (finish(nil)): the nodes fail
// their requests at the deadline themselves, and the backstop bounds the
// wait even if a writer is stuck (A3). Every fan-out waits with it: a
// round, the holder reads (gather) and the leader read.
func await(ctx context.Context, done <-chan struct{}, deadline time.Time, finish func(ctxErr error)) {
	select {
	case <-done:
		return
	default:
	}
	t := getTimer(time.Until(deadline) + 5*time.Millisecond)
	defer putTimer(t)
	select {
	case <-done:
	case <-t.C:
		finish(nil)
	case <-ctx.Done():
		finish(ctx.Err())
	}
}

// timers recycles the rounds' backstop timers: one per round otherwise.
var timers sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d) // Go 1.23+: a stopped timer's channel is drained by Stop
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	if !t.Stop() {
		// Fired: drain it, in case the main module asks for the timers
		// of Go before 1.23 (asynctimerchan=1), whose channel keeps the tick.
		select {
		case <-t.C:
		default:
		}
	}
	timers.Put(t)
}

// finish decides the round now: the nodes that have not answered count as
// failed (timed out), or the caller's context ended.
func (r *round) finish(ctxErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return
	}
	r.ctxErr = ctxErr
	for i := range r.slots {
		if r.slots[i].res == quorum.Pending && ctxErr == nil {
			r.slots[i] = slot{res: quorum.Failed, err: pipe.ErrTimeout}
			r.tally.Add(quorum.Failed)
		}
	}
	r.finishLocked()
}

// node returns the client's node index of slot i.
func (r *round) node(i int) int {
	if r.nodes == nil {
		return i
	}
	return r.nodes[i]
}

// ok reports whether the round reached its quorum (and the caller's
// context did not end it first).
func (r *round) ok() bool {
	if r.choose {
		return r.ctxErr == nil && r.picks.Succeeded(r.tally)
	}
	return r.ctxErr == nil && r.tally.Succeeded()
}

// errors aggregates the failures as *NodeError, or returns nil. A node
// timeout becomes ErrNodeTimeout, never the caller's DeadlineExceeded.
func (r *round) errors() *multierror.Error {
	var all *multierror.Error
	for i, s := range r.slots {
		if s.res != quorum.Failed {
			continue
		}
		all = appendNodeErrors(all, nodeError(r.c.nodes[r.node(i)].Addr(), s.err, r.tau))
	}
	return all
}

// unsent describes a call that the caller's context ended before anything
// was sent.
func (c *Client) unsent(op, name string, sentinel, ctxErr error) *QuorumError {
	return newQuorumError(op, name, quorum.NewTally(len(c.nodes)), sentinel, ctxErr, nil)
}

// quorumError describes a failed round.
func (r *round) quorumError(op, name string, sentinel error) *QuorumError {
	return newQuorumError(op, name, r.tally, sentinel, r.ctxErr, r.errors())
}
