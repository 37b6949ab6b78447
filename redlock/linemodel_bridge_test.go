package redlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
)

// modelPool is a fake node (fake_test.go) whose answers are the model's:
// every command the client sends is decoded by lineNode.eval, as the
// scripts decode it (the differential test shows the model is the
// scripts), and each one is logged for the test to follow. Its
// connections (slowConn) answer in order, late when the node is held.
type modelPool struct {
	fakePool
	mu      sync.Mutex
	node    lineNode
	now     int64       // the node's clock, ms
	log     chan string // what the node ran, in order
	errs    chan error  // layouts the model does not know
	held    bool        // the node runs nothing until resumed (hold)
	pending []func()    // what it runs then, in the order sent
}

func newModelPool(t *testing.T, i int) *modelPool {
	t.Helper()
	p := &modelPool{now: 1_000_000, log: make(chan string, 64), errs: make(chan error, 64)}
	p.addr = fmt.Sprintf("model:%d", i)
	p.reply = func(cmd string, args []any) (any, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		r, err := p.node.eval(at(p.now), cmd, args)
		if err != nil {
			p.errs <- err
			return nil, err
		}
		what := scriptOf(cmd, args)
		if cmd != "SET" {
			for _, a := range args[2+args[1].(int):] {
				what += " " + fmt.Sprint(a)
			}
		}
		if r.pub != (announcement{}) {
			what += fmt.Sprintf(" -> announced %s on %s", r.pub.msg, r.pub.suffix)
		}
		p.log <- what
		return r.v, nil
	}
	return p
}

// ran waits until the node has run its next command and returns it.
func (p *modelPool) ran(t *testing.T) string {
	t.Helper()
	select {
	case s := <-p.log:
		return s
	case err := <-p.errs:
		t.Fatalf("%s: %v", p.addr, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s ran nothing in 10s", p.addr)
	}
	return ""
}

func (p *modelPool) state() lineNode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.node.clone()
}

func (p *modelPool) set(f func(n *lineNode)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.node)
}

// clock returns the node's clock, ms.
func (p *modelPool) clock() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now
}

// advance moves the node's clock on by ms.
func (p *modelPool) advance(ms int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now += ms
}

// hold makes the node run nothing until resume is called (a slow node):
// the requests sent to it meanwhile wait, and then run in the order sent,
// their replies late. An attempt is then decided by the other nodes (A6),
// and its undo goes to this one (A8), whatever the goroutines' timing.
// The test resumes it when it ends, at the latest.
func (p *modelPool) hold(t *testing.T) (resume func()) {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
	var once sync.Once
	resume = func() {
		once.Do(func() {
			for {
				p.mu.Lock()
				if len(p.pending) == 0 {
					p.held = false
					p.mu.Unlock()
					return
				}
				run := p.pending[0]
				p.pending = p.pending[1:]
				p.mu.Unlock()
				run()
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// submit runs f now, or when the node is resumed if it is held.
func (p *modelPool) submit(f func()) {
	p.mu.Lock()
	if p.held {
		p.pending = append(p.pending, f)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	f()
}

func (p *modelPool) Get(context.Context) (redis.Conn, error) { return &slowConn{p: p}, nil }

// slowConn is fakeConn whose replies may come late: Send hands the request
// to the node (submit), Receive waits for its reply until the deadline.
type slowConn struct {
	p       *modelPool
	mu      sync.Mutex
	replies []*slowReply // in the order sent
}

type slowReply struct {
	done chan struct{} // closed once v and err are set
	v    any
	err  error
}

func (c *slowConn) Send(cmd string, args ...any) error {
	r := &slowReply{done: make(chan struct{})}
	c.mu.Lock()
	c.replies = append(c.replies, r)
	c.mu.Unlock()
	if cmd == "SCRIPT" {
		r.v = "OK"
		close(r.done)
		return nil
	}
	c.p.submit(func() {
		r.v, r.err = c.p.reply(cmd, args)
		close(r.done)
	})
	return nil
}

func (c *slowConn) ReceiveWithTimeout(d time.Duration) (any, error) {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		if len(c.replies) > 0 {
			r := c.replies[0]
			c.mu.Unlock()
			select {
			case <-r.done:
			case <-time.After(time.Until(deadline)):
				return nil, os.ErrDeadlineExceeded
			}
			c.mu.Lock()
			c.replies = c.replies[1:]
			c.mu.Unlock()
			if r.err != nil {
				return nil, r.err
			}
			return r.v, nil
		}
		c.mu.Unlock()
		if !time.Now().Before(deadline) {
			return nil, os.ErrDeadlineExceeded
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *slowConn) DoWithTimeout(time.Duration, string, ...any) (any, error) {
	return nil, errors.New("slowConn: Do is not used by the pipeline")
}
func (c *slowConn) Do(string, ...any) (any, error) {
	return nil, errors.New("slowConn: plain Do is a bug")
}
func (c *slowConn) Flush() error          { return nil }
func (c *slowConn) Receive() (any, error) { return c.ReceiveWithTimeout(time.Hour) }
func (c *slowConn) Close() error          { return nil }
func (c *slowConn) Err() error            { return nil }

// attemptOf returns node i's field of G for waiter w (L12), split: the seq,
// lease and value of the attempt it registered; ok false when none.
func (p *modelPool) attemptOf(w *waiter) (seq, lease, value string, ok bool) {
	n := p.state()
	g, found := n.grant(w.id)
	seq, lease, value, ok = splitGrant(g)
	return seq, lease, value, found && ok
}

// A8, L2, L4, L7, L12 on the real client (client.go attempt, Lock.release,
// Client.leave and gaveUp, Client.handedOver and Lock.claim) against nodes
// that answer as the model does: the client's argument layouts are the
// ones the model (and so the scripts) read; a waiter's attempt registers
// it everywhere (and, not fenced, its seq, its lease of 4 tau and its
// value in G, L12); a failed attempt in line undoes its grant only where
// it was not refused, with line.lua undo and its ticket unchanged when a
// node refused it; a release reserves for the first in line where the key
// was the holder's (fenced: no attempt registered, L2), or hands it over
// to it for the lease it registered (L12); the waiter takes the
// reservations, or, a quorum having handed it over its first attempt's
// value, holds the lock with that value and claims it (its next attempt,
// with a value of its own, is refused by the keys handed over: they are
// claimed, never taken); a success in line leaves the line on every node;
// an undo registers nothing, and leaves its waiter a reservation; giving
// up leaves too, passing a reservation on. This ties the client model of
// the interleaving tests to the code.
func TestLineModelFollowsTheClient(t *testing.T) {
	t.Run("fenced, reservations (L2)", func(t *testing.T) { followTheClient(t, true) })
	// L12: the waiters register their attempts; releases hand the lock over.
	t.Run("hand-over (L12)", func(t *testing.T) { followTheClient(t, false) })
}

func followTheClient(t *testing.T, fencing bool) {
	const name = "bridge"
	const tau = 200 * time.Millisecond
	const ttl = 10 * time.Second
	nodes := []*modelPool{newModelPool(t, 0), newModelPool(t, 1), newModelPool(t, 2)}
	pools := []pool.Pool{nodes[0], nodes[1], nodes[2]}
	opts := []Option{WithNodeTimeout(tau), WithTTL(ttl)}
	if fencing {
		opts = append(opts, WithFencing())
	}
	c := newTestClient(t, pools, opts...)
	cfg, err := c.callConfig(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(i int, prefix string) string {
		t.Helper()
		got := nodes[i].ran(t)
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("node %d ran %q, want %s...", i, got, prefix)
		}
		return got
	}
	reserve := fmt.Sprint(reserveFor(tau).Milliseconds())
	lease := fmt.Sprint(handOverLease(tau).Milliseconds())
	// registered reports whether node i has, in G, the attempt of w whose
	// value is v, with the lease of 4 tau (L12); seq is its number.
	registered := func(i int, w *waiter, v any) (seq string, ok bool) {
		seq, l, value, ok := nodes[i].attemptOf(w)
		return seq, ok && l == lease && value == fmt.Sprint(v)
	}

	// A holder takes the lock with a plain SET NX.
	holder, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	// A waiter in line is refused everywhere, and registered everywhere
	// (with its attempt, unless fenced: L12); refused everywhere, it undoes
	// nothing (A8). Node 2 is slow: the attempt is decided at the second
	// refusal (A6), and node 2, which had not answered yet, gets the undo
	// (A8) after the take, and finds nothing of ours.
	w := c.join(name)
	defer w.stop()
	resume := nodes[2].hold(t)
	_, err = c.attempt(t.Context(), name, &cfg, w)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Granted > 0 || qe.Refused != 2 {
		t.Fatalf("attempt while held: %v", err)
	}
	v1 := w.last // the first attempt's value (A1)
	resume()
	seqs := make([]string, len(nodes))
	for i := range nodes {
		expect(i, "line take "+w.id+" "+fmt.Sprint(v1))
		if n := nodes[i].state(); n.entry(w.id) < 0 {
			t.Fatalf("node %d: the waiter is not in line: %v", i, &n)
		}
		seq, ok := registered(i, w, v1)
		if ok == fencing {
			t.Fatalf("node %d: the waiter's attempt registered: %v, fenced: %v", i, ok, fencing)
		}
		seqs[i] = seq
	}
	checkUndo(t, nodes[2].ran(t), w.id)
	// Node 2 holds another value (another holder's, say): the release
	// reserves nodes 0 and 1 for the waiter, announced to it alone; or,
	// with its attempt registered, hands them over to it (L12) for the
	// lease it registered, announced to it alone with the attempt's seq.
	nodes[2].set(func(n *lineNode) { n.key = "another" })
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock with 2 of 3 nodes: %v", err)
	}
	for i := range 2 {
		got := expect(i, "release")
		n := nodes[i].state()
		switch {
		case fencing && (n.key != "~r:"+w.id || !strings.HasSuffix(got, "announced "+w.id+" on "+releasedSuffix+":"+c.chanID)):
			t.Fatalf("node %d after the release (%s): %v", i, got, &n)
		case !fencing && (n.key != fmt.Sprint(v1) || n.keyExp != nodes[i].clock()+handOverLease(tau).Milliseconds() ||
			!strings.HasSuffix(got, "announced "+w.id+" "+seqs[i]+" on "+releasedSuffix+":"+c.chanID) || n.entry(w.id) >= 0):
			t.Fatalf("node %d after the release (%s): %v, want it handed over to %s for %s ms (L12)", i, got, &n, w.id, lease)
		case !fencing:
			if _, _, _, ok := nodes[i].attemptOf(w); ok {
				t.Fatalf("node %d: the waiter handed the lock is still in G: %v", i, &n)
			}
		}
	}
	if got := expect(2, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 2 announced a release that was not ours: %s", got)
	}
	var l *Lock
	if fencing {
		// The waiter takes the two reservations: a lock. The grants took it
		// out of the line on nodes 0 and 1; it leaves the line on node 2,
		// where its take was refused, alone (L4), giving back no value.
		l, err = c.attempt(t.Context(), name, &cfg, w)
		if err != nil {
			t.Fatalf("attempt on 2 reservations of 3: %v", err)
		}
		for i := range nodes {
			expect(i, "line take "+w.id)
			if i == 2 {
				if got := expect(i, "line leave "+w.id+" "+reserve); got != "line leave "+w.id+" "+reserve+" " {
					t.Fatalf("the leave of a waiter that took the lock: %q, want no value", got)
				}
			}
			if n := nodes[i].state(); n.entry(w.id) >= 0 {
				t.Fatalf("node %d: the waiter that took the lock is still in line: %v", i, &n)
			}
		}
	} else {
		// The waiter's next attempt, with a value of its own (A1), is
		// refused by the keys handed over to it (they are claimed, never
		// taken, L12) and registered everywhere; node 2, slow again, gets
		// its undo, which finds nothing.
		resume := nodes[2].hold(t)
		if _, err := c.attempt(t.Context(), name, &cfg, w); !errors.As(err, &qe) || qe.Granted > 0 || qe.Refused != 2 {
			t.Fatalf("attempt on the keys handed over: %v", err)
		}
		resume()
		for i := range nodes {
			expect(i, "line take "+w.id+" "+fmt.Sprint(w.last))
			if _, ok := registered(i, w, w.last); !ok {
				t.Fatalf("node %d: the second attempt is not registered: %v", i, nodes[i].state())
			}
		}
		checkUndo(t, nodes[2].ran(t), w.id)
		// The two announcements, as the waiter's subscription hands them
		// over (the model's nodes have no channels): a quorum handed over
		// the first attempt, whose value the lock has; it is claimed on
		// every node (line.lua claim): held on nodes 0 and 1, for the TTL;
		// the waiter is out of the line and G everywhere.
		for i := range 2 {
			w.bell.announced(i, []byte(w.id+" "+seqs[i]))
		}
		if l = c.handedOver(t.Context(), name, &cfg, w); l == nil || l.value != v1 {
			t.Fatalf("a quorum handed the first attempt over: the waiter holds %v, want a lock of value %v", l, v1)
		}
		for i := range nodes {
			got := expect(i, "line claim "+w.id+" "+fmt.Sprint(v1)+" "+fmt.Sprint(ttl.Milliseconds())+" "+reserve)
			n := nodes[i].state()
			if i < 2 && (n.key != fmt.Sprint(v1) || n.keyExp != n.keySet.base+ttl.Milliseconds()) || n.entry(w.id) >= 0 || n.grants != nil {
				t.Fatalf("node %d after the claim (%s): %v", i, got, &n)
			}
		}
	}
	// A second waiter: node 2 is free (the other holder's key expired), and
	// it is first in line there; nodes 0 and 1 hold the lock. One grant of
	// three: the attempt fails and undoes it on node 2 alone (line.lua
	// undo), keeping its ticket (nodes refused it: L7 does not apply),
	// which reserves node 2 for the first in line there: itself, fenced or
	// not (the grant took its attempt out of G, and an undo registers
	// nothing, L12).
	w2 := c.join(name)
	defer w2.stop()
	nodes[2].set(func(n *lineNode) { n.key = "" })
	if _, err := c.attempt(t.Context(), name, &cfg, w2); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("attempt with 1 grant of 3: %v", err)
	}
	for i := range nodes {
		expect(i, "line take "+w2.id)
	}
	got := expect(2, "line undo "+w2.id)
	if !strings.Contains(got, " "+w2.ticket()+" ") || !strings.HasSuffix(got, "announced "+w2.id+" on "+releasedSuffix+":"+c.chanID) {
		t.Fatalf("the undo on node 2: %s", got)
	}
	// It gives up: it leaves everywhere, giving back its last attempt's
	// value, and its reservation on node 2 goes to nobody (the line is
	// empty there): the key is deleted, and '1' announced to all.
	c.gaveUp(w2, &cfg, errors.New("gave up"))
	for i := range nodes {
		got := expect(i, "line leave "+w2.id+" "+reserve+" "+fmt.Sprint(w2.last))
		if i == 2 && !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("the leave on node 2: %s", got)
		}
	}
	for i := range nodes {
		if n := nodes[i].state(); i == 2 && n.key != "" || n.line != nil || n.grants != nil {
			t.Fatalf("node %d after the last waiter left: %v", i, &n)
		}
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		expect(i, "release")
	}
	expect(2, "release")
	for i := range nodes {
		select {
		case s := <-nodes[i].log:
			t.Fatalf("node %d ran more than expected: %s", i, s)
		default:
		}
	}
}

// L12 on the real client (Client.handedOver, Lock.claim, and the undo's
// wakeup.undoing): releases hand the lock over to the waiter first in line
// on every node, which registered its attempt there; the waiter holds the
// lock once the announcements of a quorum (each with the seq of the
// attempt the node handed over) reached it, for one attempt, and none of
// them on a node the attempt's undo went to; it then holds it with that
// attempt's value, without another attempt, and claims it on every node
// with line.lua claim, which the model reads: it answers 1 where the key
// holds the value, makes it last the TTL, and the waiter is out of the
// line and G there.
func TestLineModelFollowsTheHandOver(t *testing.T) {
	const name = "bridge-handover"
	const tau = time.Second // the hand-over lasts 4 tau from the take's T1
	const ttl = 10 * time.Second
	nodes := []*modelPool{newModelPool(t, 0), newModelPool(t, 1), newModelPool(t, 2)}
	pools := []pool.Pool{nodes[0], nodes[1], nodes[2]}
	c := newTestClient(t, pools, WithNodeTimeout(tau), WithTTL(ttl))
	cfg, err := c.callConfig(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(i int, prefix string) string {
		t.Helper()
		got := nodes[i].ran(t)
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("node %d ran %q, want %s...", i, got, prefix)
		}
		return got
	}
	lease := handOverLease(tau).Milliseconds()
	holder, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	w := c.join(name)
	defer w.stop()
	// attempt makes one attempt in line while the lock is held, node slow
	// being slow: decided by the refusals of the others (A6), its undo goes
	// to node slow (A8), which runs it after the take, finding nothing.
	// It returns the attempt's value, and its seq as every node registered
	// it, with the lease of 4 tau.
	attempt := func(slow int) (value any, seq string) {
		t.Helper()
		resume := nodes[slow].hold(t)
		var qe *QuorumError
		if _, err := c.attempt(t.Context(), name, &cfg, w); !errors.As(err, &qe) || qe.Granted > 0 || qe.Refused != 2 {
			t.Fatalf("attempt while held: %v", err)
		}
		resume()
		value = w.last
		for i := range nodes {
			expect(i, "line take "+w.id+" "+fmt.Sprint(value))
			s, l, v, ok := nodes[i].attemptOf(w)
			if !ok || v != fmt.Sprint(value) || l != fmt.Sprint(lease) || i > 0 && s != seq {
				t.Fatalf("node %d: the waiter did not register its attempt (%s:%s:%s, %v): %v", i, s, l, v, ok, nodes[i].state())
			}
			seq = s
		}
		checkUndo(t, nodes[slow].ran(t), w.id)
		return value, seq
	}
	announce := func(i int, seq string) { w.bell.announced(i, []byte(w.id+" "+seq)) }
	// handedOver expects the release on node i to hand the lock over with
	// value and seq, for the lease.
	handedOver := func(i int, got string, value any, seq string) {
		t.Helper()
		want := "announced " + w.id + " " + seq + " on " + releasedSuffix + ":" + c.chanID
		if n := nodes[i].state(); !strings.HasSuffix(got, want) || n.key != fmt.Sprint(value) || n.keyExp != nodes[i].clock()+lease {
			t.Fatalf("node %d: the release %q, node %v; want it handed over to the waiter for %d ms, %s", i, got, &n, lease, want)
		}
	}

	// Attempt 1, node 2 slow: its undo goes there.
	v1, s1 := attempt(2)
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("a lock handed over before any release")
	}
	// Node 0 holds another value: the release hands nodes 1 and 2 over to
	// the waiter. Node 2's does not count: the attempt's undo went there
	// (it ran before the hand-over and found nothing, but the waiter cannot
	// tell: an undo after it would have passed it on). One node of three:
	// no lock. Node 2 keeps the key for the lease, at most.
	nodes[0].set(func(n *lineNode) { n.key, n.keyExp = "another", n.keyExp+1_000_000 })
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := expect(0, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 0 announced a release that was not ours: %s", got)
	}
	for i := 1; i < 3; i++ {
		handedOver(i, expect(i, "release"), v1, s1)
		announce(i, s1)
	}
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("the waiter holds the lock with a hand-over that its attempt's undo voids")
	}
	// The lease ends on every node (the entries with it). Another holder
	// takes nodes 1 and 2; the waiter's attempt 2, node 0 slow, is refused
	// everywhere, and registered everywhere; its undo goes to node 0.
	for _, n := range nodes {
		n.advance(lease + 1)
	}
	holder2, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	v2, s2 := attempt(0)
	if err := holder2.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(0, "release")
	for i := 1; i < 3; i++ {
		handedOver(i, expect(i, "release"), v2, s2)
	}
	// Node 2's hand-over of attempt 2 and node 1's of attempt 1 (its last
	// announcement so far) are not added together: two values (A1).
	announce(2, s2)
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("the waiter holds the lock with the hand-overs of two attempts")
	}
	// Node 1's of attempt 2: a quorum, and the undo of attempt 1 on node 2
	// voids nothing of attempt 2. The waiter holds the lock with attempt
	// 2's value and claims it on every node.
	announce(1, s2)
	l := c.handedOver(t.Context(), name, &cfg, w)
	if l == nil || l.value != v2 {
		t.Fatalf("a quorum handed attempt 2 over, and the waiter holds %v, want a lock of value %v", l, v2)
	}
	for i := range nodes {
		got := expect(i, "line claim "+w.id+" "+fmt.Sprint(v2)+" "+fmt.Sprint(ttl.Milliseconds()))
		n := nodes[i].state()
		if i > 0 && (n.key != fmt.Sprint(v2) || n.keyExp != n.keySet.base+ttl.Milliseconds()) || n.entry(w.id) >= 0 || n.grants != nil {
			t.Fatalf("node %d after the claim (%s): %v", i, got, &n)
		}
		if i == 0 && (n.key != "another" || n.keySet.d != 0) {
			t.Fatalf("node 0, another's, after the claim (%s): %v", got, &n)
		}
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := expect(0, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 0 announced a release that was not ours: %s", got)
	}
	for i := 1; i < 3; i++ {
		if got := expect(i, "release"); !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("node %d: the release of the lock handed over: %s", i, got)
		}
	}
}

// checkUndo checks that a node ran id's undo, and that it undid nothing.
func checkUndo(t *testing.T, got, id string) {
	t.Helper()
	if !strings.HasPrefix(got, "line undo "+id) || strings.Contains(got, "announced") {
		t.Fatalf("a node ran %q, want an undo of %s that finds nothing of its own", got, id)
	}
}
