package redlock

import (
	"context"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// acquisition is one Acquire or TryAcquire call. Its attempts prefer the
// slot that had the most grants in its last attempt, so that nodes that
// split their grants between slots come together on one (S2).
type acquisition struct {
	s      *Semaphore
	prefer int // a slot, or -1
}

// join puts the caller in the semaphore's line: it listens on its
// client's channel of every slot, where a freed slot is handed to it,
// named by its id (S4, L10).
func (a *acquisition) join() *waiter {
	s, c := a.s, a.s.c
	return c.enqueue(&c.sems, s.name,
		func(bell *wakeup) func() { return c.wait.listen(bell, s.chans...) },
		func(w *waiter, tau time.Duration) { s.leave(w, tau, "", -1) })
}

// busy is false: a permit's first attempt is outside the line (sem.lua
// take without an id), which with K slots often finds one free; L11 is
// the lock's.
func (a *acquisition) busy() bool { return false }

// handedOver is nil: a permit is never handed over (S4: a release reserves
// a slot for the first in line, who takes it).
func (a *acquisition) handedOver(context.Context, *config, *waiter) *Lock { return nil }

// script returns the arguments of sem.lua's op, followed by extra.
func (s *Semaphore) script(op string, extra ...any) []any {
	args := make([]any, 0, 3+len(s.keys)+len(extra))
	args = append(args, semHash, len(s.keys))
	args = append(args, s.keys...)
	args = append(args, op)
	return append(args, extra...)
}

// leave takes waiter w out of the semaphore's line on every node, in the
// background (L4), with the next of the client's waiters put in its place
// (L9). It also gives back what its attempt with value took, but the
// slot keep (-1: none), on every node (S2).
func (s *Semaphore) leave(w *waiter, tau time.Duration, value any, keep int) {
	s.c.leaveWith(&s.c.sems, s.name, w, tau, nil, s.script("leave", w.id, reserveFor(tau).Milliseconds(), value, keep))
}

// attempt is one acquisition of a permit (S2): each node grants one slot,
// and the attempt holds a permit when Q nodes granted the same slot within
// the validity (A7), like a lock on that slot's key. Every other grant is
// given back (A8). A waiter's attempt goes through the line (S4).
func (a *acquisition) attempt(ctx context.Context, cfg *config, w *waiter) (*Lock, error) {
	s, c := a.s, a.s.c
	if err := ctx.Err(); err != nil {
		qe := c.unsent("lock", s.name, ErrNotAcquired, err)
		if c.observed() {
			c.attempted(ctx, s.name, cfg, quorum.NewTally(len(c.nodes)), 0, 0, qe)
		}
		return nil, qe
	}
	var value any = c.value(cfg) // A1, M1
	id, ticket := "", "0"
	if w != nil {
		w.entered.Store(true)
		id, ticket = w.id, w.ticket()
		w.bell.reset()
	}
	fence := cfg.fenceArg()
	tau := cfg.nodeTimeout
	reserve := reserveFor(tau).Milliseconds()
	args := s.script("take", id, value, cfg.ttl.Milliseconds(), ticket, lineLifetime(tau).Milliseconds(), fence, a.prefer, reserve)
	t1 := c.clock.Now() // A2
	r := c.runChoosing(ctx, tau, args)

	ok, won := r.ok(), r.picks.Best
	var token uint64
	var fenceErrs *multierror.Error
	var fenceCtxErr error
	if ok && cfg.fencing { // S5: one counter for every slot
		token, ok, fenceErrs, fenceCtxErr = c.fence(ctx, s.keys[2+won], s.keys[1], value, tau, r)
	}
	until := t1.Add(cfg.ttl - driftAllowance(cfg.ttl, cfg.driftFactor))
	decided := c.clock.Now()
	expired := !decided.Before(until)
	if ok && !expired {
		// S2: the grants of other slots, and whatever the nodes that did
		// not grant the won slot may have written, are given back.
		if w != nil {
			s.leave(w, tau, value, won) // L4: out of the line, in the same request
		} else {
			s.giveBack(r, s.script("release", value, -1, won, "0"), tau, r.won)
		}
		if c.observed() {
			c.attempted(ctx, s.name, cfg, r.tally, decided.Sub(t1), token, nil) // O1: +1
		}
		return s.permit(value, won, token, cfg, t1, until), nil
	}
	a.prefer = won
	// A8: given back wherever it may have been written, and deleted, not
	// reserved: grants split between slots differ from node to node, and
	// reservations made from them would keep the nodes apart (S2). The free
	// slots go to the first waiters in line (S4).
	undo := s.script("release", value, -1, -1, "0")
	if w != nil {
		// L7: a turn that failed with no node held by anyone else, and not
		// merely split between slots, means that this waiter is what the
		// others wait for: it goes to the back.
		split := !r.ok() && r.tally.Failed == 0
		if r.tally.Refused == 0 && !split {
			w.toBack(c)
		}
		undo = append(undo, w.id, w.ticket(), lineLifetime(tau).Milliseconds())
	}
	s.giveBack(r, undo, tau, func(int) bool { return false })
	qe := r.attemptError(s.name, ok, expired, fenceErrs, fenceCtxErr)
	if c.observed() {
		c.attempted(ctx, s.name, cfg, r.tally, decided.Sub(t1), token, qe)
	}
	return nil, qe
}

// giveBack sends args (sem.lua release) to every node of round r that
// may have written the attempt's value (all but the definite refusals) and
// is not kept; nobody waits for it.
func (s *Semaphore) giveBack(r *round, args []any, tau time.Duration, kept func(int) bool) {
	bg := s.c.background()
	for i, sl := range r.slots {
		if sl.res != quorum.Refused && !kept(i) {
			s.c.nodes[i].Do(pipe.Request{Cmd: "EVALSHA", Args: args, Timeout: tau, H: bg, Node: i})
		}
	}
}

// permit returns the held permit: a lock on the key of slot, released by
// sem.lua (S3) so that the slot goes to the first in line.
func (s *Semaphore) permit(value any, slot int, token uint64, cfg *config, t1, until time.Time) *Lock {
	plain := *cfg
	plain.autoExtend = false // scheduled below, once the permit's release is set
	l := newLock(s.c, s.name, s.keys[2+slot], value, token, &plain, t1, until)
	l.releaseArgs = s.script("release", value, slot, -1, reserveFor(cfg.nodeTimeout).Milliseconds())
	if cfg.autoExtend {
		s.c.ext.schedule(l)
	}
	return l
}
