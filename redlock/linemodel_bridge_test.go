package redlock

import (
	"context"
	"errors"
	"fmt"
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

func (p *modelPool) Get(context.Context) (redis.Conn, error) {
	return &slowConn{replyQueue: replyQueue{thaw: p.thaw}, p: p}, nil
}

// slowConn is fakeConn whose replies may come late: Send hands the request
// to the node (submit), Receive waits for its reply until the deadline.
type slowConn struct {
	replyQueue
	p *modelPool
}

func (c *slowConn) Send(cmd string, args ...any) error {
	r := c.queue()
	if cmd == "SCRIPT" {
		r.settle("OK", nil)
		return nil
	}
	c.p.submit(func() { r.settle(c.p.reply(cmd, args)) })
	return nil
}

// attemptOf returns node i's field of G for waiter w (L12), split: the seq,
// lease and value of the attempt it registered; ok false when none.
func (p *modelPool) attemptOf(w *waiter) (seq, lease, value string, ok bool) {
	n := p.state()
	g, found := n.grant(w.id)
	seq, lease, value, ok = splitGrant(g)
	return seq, lease, value, found && ok
}

// bridge is what the bridge tests share: three nodes that answer as the
// model does, a client on them, and the call config of the lock name.
type bridge struct {
	t     *testing.T
	nodes []*modelPool
	c     *Client
	cfg   config
}

func newBridge(t *testing.T, name string, opts ...Option) *bridge {
	t.Helper()
	b := &bridge{t: t, nodes: []*modelPool{newModelPool(t, 0), newModelPool(t, 1), newModelPool(t, 2)}}
	b.c = newTestClient(t, []pool.Pool{b.nodes[0], b.nodes[1], b.nodes[2]}, opts...)
	var err error
	if b.cfg, err = b.c.callConfig(name, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// expect returns what node i ran next, which must begin with prefix.
func (b *bridge) expect(i int, prefix string) string {
	b.t.Helper()
	got := b.nodes[i].ran(b.t)
	if !strings.HasPrefix(got, prefix) {
		b.t.Fatalf("node %d ran %q, want %s...", i, got, prefix)
	}
	return got
}

// heldWithSlowNode2: a holder takes the lock with a plain SET NX on every
// node; a waiter joins the line (stopped when the test ends), node 2 is
// held (slow), and the waiter's attempt is refused by nodes 0 and 1,
// decided at the second refusal (A6), node 2 not answering yet. It
// returns the holder, the waiter, and what resumes node 2.
func (b *bridge) heldWithSlowNode2(name string) (holder *Lock, w *waiter, resume func()) {
	t := b.t
	t.Helper()
	holder, err := b.c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.nodes {
		b.expect(i, "acquire")
	}
	w = b.c.join(name)
	t.Cleanup(w.stop)
	resume = b.nodes[2].hold(t)
	var qe *QuorumError
	if _, err := b.c.attempt(t.Context(), name, &b.cfg, w); !errors.As(err, &qe) || qe.Granted > 0 || qe.Refused != 2 {
		t.Fatalf("attempt while held: %v", err)
	}
	return holder, w, resume
}

// nextAttemptLocks: w's next attempt (what) gets the lock, with its own
// value (A1), not the earlier attempt's.
func (b *bridge) nextAttemptLocks(name string, w *waiter, earlier any, what, own string) *Lock {
	t := b.t
	t.Helper()
	l, err := b.c.attempt(t.Context(), name, &b.cfg, w)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if l.value != w.last || l.value == earlier {
		t.Fatalf("the lock's value %v, want %s, %v", l.value, own, w.last)
	}
	return l
}

// A8, L2, L4, L7, L12 on the real client (client.go attempt, Lock.release,
// Client.leave and gaveUp) against nodes that answer as the model does:
// the client's argument layouts are the ones the model (and so the
// scripts) read; a waiter's attempt registers it everywhere (and, not
// fenced, its seq, its lease of 4 tau and its value in G, L12); a failed
// attempt in line undoes its grant only where it was not refused, with
// line.lua undo and its ticket unchanged when a node refused it: at once
// where it was granted, and, fenced, where it had not answered; not
// fenced, a node that had not answered gets the undo only if it does not
// refuse (L12); a release reserves for the first in line where the key
// was the holder's (fenced: no attempt registered, L2), or hands it over
// to it for the lease it registered (L12), its entry and G's field
// staying; the waiter's next attempt takes the reservations, or the keys
// handed over to its earlier attempt, as its own (L12); a success in line
// leaves the line on every node that did not grant it; an undo registers
// nothing, and leaves its waiter a reservation; giving up leaves too,
// passing a reservation on. This ties the client model of the
// interleaving tests to the code.
func TestLineModelFollowsTheClient(t *testing.T) {
	t.Run("fenced, reservations (L2)", func(t *testing.T) { followTheClient(t, true) })
	// L12: the waiters register their attempts; releases hand the lock over.
	t.Run("hand-over (L12)", func(t *testing.T) { followTheClient(t, false) })
}

func followTheClient(t *testing.T, fencing bool) {
	const name = "bridge"
	const tau = 200 * time.Millisecond
	const ttl = 10 * time.Second
	opts := []Option{WithNodeTimeout(tau), WithTTL(ttl)}
	if fencing {
		opts = append(opts, WithFencing())
	}
	b := newBridge(t, name, opts...)
	nodes, c, cfg, expect := b.nodes, b.c, b.cfg, b.expect
	reserve := fmt.Sprint(reserveFor(tau).Milliseconds())
	lease := fmt.Sprint(handOverLease(tau).Milliseconds())
	// registered reports whether node i has, in G, the attempt of w whose
	// value is v, with the lease of 4 tau (L12); seq is its number.
	registered := func(i int, w *waiter, v any) (seq string, ok bool) {
		seq, l, value, ok := nodes[i].attemptOf(w)
		return seq, ok && l == lease && value == fmt.Sprint(v)
	}

	// A holder takes the lock with a plain SET NX. A waiter in line is
	// refused everywhere, and registered everywhere (with its attempt,
	// unless fenced: L12); refused everywhere, it undoes nothing (A8).
	// Node 2 is slow: the attempt is decided at the second refusal (A6);
	// fenced, node 2, which had not answered yet, gets the undo (A8) after
	// the take, and it finds nothing of ours; not fenced, the undo waits
	// for node 2's answer, a refusal: none is sent (L12).
	holder, w, resume := b.heldWithSlowNode2(name)
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
	if fencing {
		checkUndo(t, nodes[2].ran(t), w.id)
	}
	// Node 2 holds another value (another holder's, say): the release
	// reserves nodes 0 and 1 for the waiter, announced to it alone; or,
	// with its attempt registered, hands them over to it (L12) for the
	// lease it registered, announced to it alone with the attempt's seq,
	// its entry and G's field staying.
	nodes[2].set(func(n *lineNode) { n.key = "another" })
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock with 2 of 3 nodes: %v", err)
	}
	for i := range 2 {
		got := expect(i, "release")
		n := nodes[i].state()
		_, still := registered(i, w, v1)
		switch {
		case fencing && (n.key != "~r:"+w.id || !strings.HasSuffix(got, "announced "+w.id+" on "+releasedSuffix+":"+c.chanID)):
			t.Fatalf("node %d after the release (%s): %v", i, got, &n)
		case !fencing && (n.key != fmt.Sprint(v1) || n.keyExp != nodes[i].clock()+handOverLease(tau).Milliseconds() ||
			!strings.HasSuffix(got, "announced "+w.id+" "+seqs[i]+" on "+releasedSuffix+":"+c.chanID) || n.entry(w.id) < 0 || !still):
			t.Fatalf("node %d after the release (%s): %v, want it handed over to %s for %s ms, in line and G still (L12)", i, got, &n, w.id, lease)
		}
	}
	if got := expect(2, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 2 announced a release that was not ours: %s", got)
	}
	// The waiter's next attempt takes the two reservations, or the two
	// keys handed over to its first attempt (L12: a newer attempt takes
	// them as its own, with its own value, A1): a lock. The grants took it
	// out of the line (and G) on nodes 0 and 1; it leaves the line on node
	// 2, where its take was refused, alone (L4), giving back no value.
	l := b.nextAttemptLocks(name, w, v1, "attempt on 2 reservations (or hand-overs) of 3", "its own attempt's")
	for i := range nodes {
		expect(i, "line take "+w.id+" "+fmt.Sprint(w.last))
		if i == 2 {
			if got := expect(i, "line leave "+w.id+" "+reserve); got != "line leave "+w.id+" "+reserve+" " {
				t.Fatalf("the leave of a waiter that took the lock: %q, want no value", got)
			}
		}
		n := nodes[i].state()
		if n.entry(w.id) >= 0 || n.grants != nil || i < 2 && (n.key != fmt.Sprint(l.value) || n.keyExp != nodes[i].clock()+ttl.Milliseconds()) {
			t.Fatalf("node %d: after the waiter took the lock: %v", i, &n)
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

// L12 on the real client (Client.handedOver, Lock.claim, and the
// attempt's undo, Client.undo and wakeup.settle): releases hand the lock over
// to the waiter first in line on every node, which registered its latest
// attempt there. The waiter counts those hand-overs only once every node
// has answered the attempt and no undo of it went anywhere: not while a
// node is silent (its take might be granted there, and need the undo),
// and not at all once an undo went to a node that granted it. Counted, a
// quorum's hand-overs give the waiter the lock, with that attempt's value,
// without another attempt; it claims it on every node with line.lua claim,
// which the model reads: it answers 1 where the key holds the value, makes
// it last the TTL, and the waiter is out of the line and G there. Not
// counted, the waiter's next attempt takes them as its own.
func TestLineModelFollowsTheHandOver(t *testing.T) {
	const name = "bridge-handover"
	const tau = time.Second // the hand-over lasts 4 tau from the take's T1
	const ttl = 10 * time.Second
	b := newBridge(t, name, WithNodeTimeout(tau), WithTTL(ttl))
	nodes, c, cfg, expect := b.nodes, b.c, b.cfg, b.expect
	lease := handOverLease(tau).Milliseconds()
	// registered checks that node i registered w's attempt of value v, with
	// the lease of 4 tau, and returns its seq.
	registered := func(i int, w *waiter, v any) string {
		t.Helper()
		s, l, value, ok := nodes[i].attemptOf(w)
		if !ok || value != fmt.Sprint(v) || l != fmt.Sprint(lease) {
			t.Fatalf("node %d: the waiter did not register its attempt (%s:%s:%s, %v): %v", i, s, l, value, ok, nodes[i].state())
		}
		return s
	}
	// handedOver expects the release on node i to hand the lock over to w
	// with value and seq, for the lease, and announces it to w as its
	// subscription would (the model's nodes have no channels).
	handedOver := func(i int, got string, w *waiter, value any, seq string) {
		t.Helper()
		want := "announced " + w.id + " " + seq + " on " + releasedSuffix + ":" + c.chanID
		if n := nodes[i].state(); !strings.HasSuffix(got, want) || n.key != fmt.Sprint(value) || n.keyExp != nodes[i].clock()+lease {
			t.Fatalf("node %d: the release %q, node %v; want it handed over to the waiter for %d ms, %s", i, got, &n, lease, want)
		}
		w.bell.announced(i, []byte(w.id+" "+seq))
	}

	// Attempt 1, node 2 slow: refused by nodes 0 and 1, decided; node 2's
	// answer is awaited before any undo there.
	holder, w, resume := b.heldWithSlowNode2(name)
	v1 := w.last
	seq := ""
	for i := range 2 {
		expect(i, "line take "+w.id+" "+fmt.Sprint(v1))
		seq = registered(i, w, v1)
	}
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("a lock handed over before any release")
	}
	// The release hands nodes 0 and 1 over to the waiter. They do not
	// count while node 2 has not answered attempt 1.
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		handedOver(i, expect(i, "release"), w, v1, seq)
	}
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("the waiter holds the lock by the hand-overs of an attempt a node has not answered")
	}
	// Node 2 runs the take (refused, registered) and then the release, which
	// hands it over too. Its refusal settles attempt 1 with no undo: the
	// hand-overs count, and the waiter holds the lock with attempt 1's
	// value.
	resume()
	expect(2, "line take "+w.id+" "+fmt.Sprint(v1))
	if s := registered(2, w, v1); s != seq {
		t.Fatalf("node 2 registered seq %s, the others %s", s, seq)
	}
	handedOver(2, expect(2, "release"), w, v1, seq)
	var l *Lock
	for deadline := time.Now().Add(10 * time.Second); l == nil; time.Sleep(time.Millisecond) {
		if l = c.handedOver(t.Context(), name, &cfg, w); l == nil && time.Now().After(deadline) {
			t.Fatal("a quorum handed attempt 1 over, every node answered it, and the waiter does not hold the lock")
		}
	}
	if l.value != v1 {
		t.Fatalf("the lock handed over has value %v, want attempt 1's, %v", l.value, v1)
	}
	for i := range nodes {
		got := expect(i, "line claim "+w.id+" "+fmt.Sprint(v1)+" "+fmt.Sprint(ttl.Milliseconds()))
		n := nodes[i].state()
		if n.key != fmt.Sprint(v1) || n.keyExp != n.keySet.base+ttl.Milliseconds() || n.entry(w.id) >= 0 || n.grants != nil {
			t.Fatalf("node %d after the claim (%s): %v", i, got, &n)
		}
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if got := expect(i, "release"); !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("node %d: the release of the lock handed over: %s", i, got)
		}
	}

	// A second waiter's attempt A is granted on node 2 alone (its key
	// free): it fails, and its undo goes there, which leaves node 2
	// reserved for it (an undo registers nothing). The release hands nodes
	// 0 and 1 over to attempt A: they do not count (an undo of it went
	// somewhere: it passes the value on wherever it finds it).
	holder2, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	nodes[2].set(func(n *lineNode) { n.key = "" })
	w2 := c.join(name)
	defer w2.stop()
	// Decided by the refusals of nodes 0 and 1, with node 2's grant in or
	// not: the undo goes there at once, or once it answers.
	var qe *QuorumError
	if _, err := c.attempt(t.Context(), name, &cfg, w2); !errors.As(err, &qe) || qe.Refused != 2 {
		t.Fatalf("attempt with 1 grant of 3: %v", err)
	}
	vA := w2.last
	for i := range nodes {
		expect(i, "line take "+w2.id+" "+fmt.Sprint(vA))
	}
	seqA := registered(0, w2, vA)
	if got := expect(2, "line undo "+w2.id); !strings.HasSuffix(got, "announced "+w2.id+" on "+releasedSuffix+":"+c.chanID) {
		t.Fatalf("the undo on node 2: %s, want a reservation for the waiter", got)
	}
	if err := holder2.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		handedOver(i, expect(i, "release"), w2, vA, seqA)
	}
	if got := expect(2, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 2 announced a release that was not ours: %s", got)
	}
	if l := c.handedOver(t.Context(), name, &cfg, w2); l != nil {
		t.Fatal("the waiter holds the lock by the hand-overs of an attempt whose undo went to a node")
	}
	// Its next attempt, B, takes them as its own, and node 2's reservation:
	// granted everywhere, with B's value; no undo, no leave.
	lB := b.nextAttemptLocks(name, w2, vA, "attempt B on two keys handed over to attempt A and a reservation", "attempt B's")
	for i := range nodes {
		expect(i, "line take "+w2.id+" "+fmt.Sprint(w2.last))
		if n := nodes[i].state(); n.key != fmt.Sprint(w2.last) || n.line != nil || n.grants != nil {
			t.Fatalf("node %d after attempt B: %v", i, &n)
		}
	}
	if err := lB.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if got := expect(i, "release"); !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("node %d: the release of attempt B's lock: %s", i, got)
		}
	}
	for i := range nodes {
		select {
		case s := <-nodes[i].log:
			t.Fatalf("node %d ran more than expected: %s", i, s)
		default:
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
