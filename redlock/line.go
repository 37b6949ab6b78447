package redlock

import (
	"crypto/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// The line of waiters (ALGORITHM.md L1-L6). Lock callers that find the
// lock held wait in one line per name, kept on every node, across all the
// clients of all the processes: a release does not free the lock but
// reserves it for the first in line, who alone can take it, so waiters are
// served in the order they arrived and never split a quorum among
// themselves. The line only ever withholds a grant: the lock is still taken
// by Q grants of a key that held no other lock within the validity (A7).
//
// Its timing derives from the node timeout tau, so that a waiter that dies
// or freezes holds the others back for a few tau, never a TTL (L3, L4):
// an entry lives lineLifetime past the waiter's last attempt, the waiter
// attempts every refreshEvery, and a reservation lasts reserveFor.

// lineLifetime is how long a waiter's entry outlives its last attempt.
func lineLifetime(tau time.Duration) time.Duration { return 4 * tau }

// refreshEvery is how often a waiter attempts (and so renews its entry)
// when nothing wakes it.
func refreshEvery(tau time.Duration) time.Duration { return tau }

// reserveFor is how long a reservation for the first in line lasts.
func reserveFor(tau time.Duration) time.Duration { return 4 * tau }

// waiter is one Lock caller in the line of a name.
type waiter struct {
	id      string                 // its entry, and how reservations name it: "w<client>.<random>" (L10)
	place   atomic.Pointer[string] // its ticket: microseconds of the wall clock when it joined (L1)
	bell    *wakeup
	entered atomic.Bool // it may have entries on the nodes: it attempted, or was put in line
	// keys are line.lua's keys of its name (nameKeys), boxed at its first
	// attempt in line and used by every request it sends after. Only its
	// Lock call's goroutine uses them.
	keys []any
	// last is its last attempt's value: a leave when it gives up passes on
	// a lock handed over to it with it (L12). Only its Lock call's
	// goroutine uses it.
	last any
	mine func() bool
	// fin orders the undos that wait for a slow node's answer (A8) with
	// the waiter's leave: once finished (its leave sent), such an undo
	// takes it out of the line instead of putting it back (L12).
	fin      sync.Mutex
	finished bool
	out      func()              // leaves the client's queue (L9)
	leave    func(time.Duration) // leaves the line on every node, in the background (L4)
	stop     func()              // stops listening for releases, and leaves the client's queue
}

// ticket returns the waiter's place in line.
func (w *waiter) ticket() string { return *w.place.Load() }

// toBack gives the waiter a new place: now (L7).
func (w *waiter) toBack(c *Client) {
	t := c.ticket()
	w.place.Store(&t)
}

// join puts the caller in the line of name: it listens for releases now,
// and enters the line on every node with its next attempt once it is the
// first of the client's own waiters for name (L9).
func (c *Client) join(name string) *waiter {
	return c.enqueue(&c.local, name, func(bell *wakeup) func() { return c.wait.wait(name, c.chanID, bell) },
		func(w *waiter, tau time.Duration) { c.leave(name, w, tau, nil) })
}

// enqueue makes a waiter in the client's queue q under name, ringing on
// the releases listen subscribes it to, that leaves the line on the nodes
// with leave.
func (c *Client) enqueue(q *queue, name string, listen func(*wakeup) func(), leave func(*waiter, time.Duration)) *waiter {
	// L1: the same ticket on every node, for the whole wait (until a failed
	// turn sends it to the back, L7), so every node puts the same waiter
	// first. It orders; it never times.
	// L10: the id starts with the client's channel id, up to the first
	// '.': a release that reserves for it announces it on that channel.
	w := &waiter{id: c.chanID + "." + rand.Text()}
	w.toBack(c)
	w.bell = newWakeup(w.id, len(c.nodes))
	unsubscribe := listen(w.bell)
	q.join(name, w) // a turn here rings the bell
	w.mine = func() bool { return q.head(name, w) }
	w.out = func() { q.leave(name, w) }
	w.leave = func(tau time.Duration) { leave(w, tau) }
	w.stop = func() {
		unsubscribe()
		w.out()
	}
	return w
}

// turn reports whether the caller may attempt now: always before it waits,
// and while it waits, when it is the first of its client's own waiters.
func (w *waiter) turn() bool { return w == nil || w.mine() }

// ticket returns a place in line: now, in microseconds of the wall clock.
func (c *Client) ticket() string { return strconv.FormatInt(c.clock.Now().UnixMicro(), 10) }

// undoArgs returns the arguments of the undo of a waiter's failed attempt
// (line.lua undo): where the attempt took the key, the waiter keeps its
// place in line (with its current ticket) and the key goes to the first.
func (w *waiter) undoArgs(keys []any, value any, tau time.Duration) []any {
	return append(lineKeys(keys), "undo", w.id, value, w.ticket(),
		lineLifetime(tau).Milliseconds(), reserveFor(tau).Milliseconds())
}

// lateUndoArgs returns the undo of the attempt with value for a waiter
// that finished, taken or given up (its leave sent): release.lua, silent,
// with its id, which takes its entry out of the line and passes on what
// the attempt holds (L12), never putting it back in line.
func (w *waiter) lateUndoArgs(keys []any, value any, tau time.Duration) []any {
	return releaseArgs(keys[0], keys[1], keys[3], value, "0", tau, w.id)
}

// lineArgs returns the arguments of a waiter's attempt (line.lua take) with
// value; seq, when not 0, numbers it and registers value for a hand-over
// (L12).
func (w *waiter) lineArgs(keys []any, value any, cfg *config, seq uint64) []any {
	args := append(lineKeys(keys), "take", w.id, value, cfg.ttl.Milliseconds(),
		w.ticket(), lineLifetime(cfg.nodeTimeout).Milliseconds(), cfg.fenceArg())
	if seq != 0 {
		args = append(args, seq, handOverLease(cfg.nodeTimeout).Milliseconds())
	}
	return args
}

// lineKeys starts the arguments of line.lua: its hash and the name's four
// keys (lock, line, counter, grants), as nameKeys makes them.
func lineKeys(keys []any) []any {
	return append(append(make([]any, 0, 16), lineHash, 4), keys...)
}

// nameKeys returns w's keys of name (its keys), made at the first call.
func (w *waiter) nameKeys(name string) []any {
	if w.keys == nil {
		w.keys = nameKeys(name)
	}
	return w.keys
}

// nameKeys returns the keys line.lua works on for lock name, boxed once.
func nameKeys(name string) []any {
	return []any{LockKey(name), LineKey(name), CounterKey(name), GrantsKey(name)}
}

// leave takes the waiter out of the line in the background (L4): after it
// took the lock, or gave up. The next of the client's own waiters for name,
// if any, takes its place in the same step, on every node at once (L9).
// Otherwise, after a success (won, the attempt's round), it waits for every
// node to answer that attempt and goes only to the nodes that did not grant
// it: a grant took the entry out already (line.lua take). Each request is
// queued behind the waiter's last attempt on that node's connection, so it
// runs after it.
// A waiter that gave up (won nil) also passes on a lock handed over to it
// meanwhile (L12); one that took the lock keeps those.
func (c *Client) leave(name string, w *waiter, tau time.Duration, won *round) {
	var value any = ""
	if won == nil && w.last != nil {
		value = w.last
	}
	c.leaveWith(&c.local, name, w, tau, won, append(lineKeys(w.nameKeys(name)), "leave", w.id, reserveFor(tau).Milliseconds(), value))
}

// leaveWith sends args, the script that takes w out of the line, to the
// nodes as leave says (won may be nil: every node); the next of the
// client's waiters in q under name, if any, is put in its place by the
// same request (L9): its id, ticket and entry lifetime are appended to
// args.
func (c *Client) leaveWith(q *queue, name string, w *waiter, tau time.Duration, won *round, args []any) {
	send := func(skip []quorum.Result) {
		w.fin.Lock() // a later undo of its attempts goes after it, as a release (Client.undo)
		defer w.fin.Unlock()
		w.finished = true
		bg := c.background()
		for i, n := range c.nodes { // never blocks (C1)
			if skip == nil || skip[i] != quorum.Granted {
				n.Do(pipe.Request{Cmd: "EVALSHA", Args: args, Timeout: tau, H: bg, Node: i})
			}
		}
	}
	q.handOff(name, w, func(next *waiter) {
		if next != nil {
			args = append(args, next.id, next.ticket(), lineLifetime(tau).Milliseconds())
			send(nil)
			return
		}
		if won == nil {
			send(nil)
			return
		}
		// won is an attempt's round, over every node: its slots are
		// indexed as c.nodes, as send's skip is.
		won.whenAnswered(send)
	})
}

// wakeup is how a waiter is woken: releases ring it, and it waits on ch.
type wakeup struct {
	ch   chan struct{} // buffered: a ring is kept until taken
	id   string        // the waiter's id: releases that reserve for it say it
	need int           // reservations that ring it: a quorum

	mu   sync.Mutex
	seen []bool      // the nodes that reserved the lock for it since reset
	h    lastAttempt // its latest attempt in line, and the locks handed over to it (L12)
}

func newWakeup(id string, n int) *wakeup {
	w := &wakeup{ch: make(chan struct{}, 1), id: id, need: quorum.Majority(n), seen: make([]bool, n)}
	w.h.got = make([]uint64, n)
	return w
}

func (w *wakeup) ring() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// announced takes a release's announcement from node i: a reservation for
// this waiter counts, and rings it once a quorum of nodes has reserved the
// lock for it or handed it over (L2, L12: its attempt then finds enough of
// them waiting for it, instead of racing the release to the others); a
// reservation for another waiter is not its
// turn; a hand-over to it (its id and a seq) counts as handOver says (L12);
// anything else ('1': the lock is free, or a release by an older client)
// rings it.
func (w *wakeup) announced(i int, payload []byte) {
	if len(payload) < 2 || payload[0] != 'w' {
		w.ring()
		return
	}
	if string(payload) != w.id {
		w.handOver(i, payload)
		return
	}
	w.mu.Lock()
	w.seen[i] = true
	n := w.waitingLocked()
	w.mu.Unlock()
	if n >= w.need {
		w.ring()
	}
}

// waitingLocked counts the nodes where the lock waits for this waiter's
// next attempt: reserved for it since its last attempt began, or handed
// over to its latest attempt (L12), which its next attempt takes as its
// own. A release that crosses an attempt leaves some nodes of each kind.
func (w *wakeup) waitingLocked() int {
	n := 0
	for i, s := range w.seen {
		if s || w.h.seq != 0 && w.h.got[i] == w.h.seq {
			n++
		}
	}
	return n
}

// reset forgets the reservations seen: called before each attempt.
func (w *wakeup) reset() {
	w.mu.Lock()
	clear(w.seen)
	w.mu.Unlock()
}
