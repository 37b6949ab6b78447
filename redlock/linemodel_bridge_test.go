package redlock

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/pool"
)

// modelPool is a fake node (fake_test.go) whose answers are the model's:
// every command the client sends is decoded by lineNode.eval, as the
// scripts decode it (the differential test shows the model is the
// scripts), and each one is logged for the test to follow.
type modelPool struct {
	fakePool
	mu   sync.Mutex
	node lineNode
	now  int64       // the node's clock, ms
	log  chan string // what the node ran, in order
	errs chan error  // layouts the model does not know
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

// A8, L2, L4, L7, L12 on the real client (client.go attempt, Lock.release,
// Client.leave and gaveUp) against nodes that answer as the model does:
// the client's argument layouts are the ones the model (and so the
// scripts) read; a waiter's attempt registers it everywhere (and, not
// fenced, its value in G, L12); a failed attempt in line undoes its grant
// only where it was not refused, with line.lua undo and its ticket
// unchanged when a node refused it; a release reserves for the first in
// line where the key was the holder's (fenced: no value registered, L2),
// or hands it over to it (L12); a success in line leaves the line on every
// node; giving up leaves too, passing a reservation, or a lock handed over
// to it, on. This ties the client model of the interleaving tests to the
// code.
func TestLineModelFollowsTheClient(t *testing.T) {
	t.Run("fenced, reservations (L2)", func(t *testing.T) { followTheClient(t, true) })
	// L12: the waiters register their value; releases hand the lock over.
	t.Run("hand-over (L12)", func(t *testing.T) { followTheClient(t, false) })
}

func followTheClient(t *testing.T, fencing bool) {
	const name = "bridge"
	const tau = 200 * time.Millisecond
	nodes := []*modelPool{newModelPool(t, 0), newModelPool(t, 1), newModelPool(t, 2)}
	pools := []pool.Pool{nodes[0], nodes[1], nodes[2]}
	opts := []Option{WithNodeTimeout(tau), WithTTL(10 * time.Second)}
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
	// registered reports whether node i has w's value in G (L12).
	registered := func(i int, w *waiter) bool {
		n := nodes[i].state()
		g, ok := n.grant(w.id)
		return ok && strings.HasSuffix(g, ":"+fmt.Sprint(w.value))
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
	// (with its value, unless fenced: L12); refused everywhere, it undoes
	// nothing (A8).
	// The attempt is decided at the second refusal (A6): a node that had
	// not answered yet gets the undo (A8), which finds nothing of ours.
	w := c.join(name)
	defer w.stop()
	_, err = c.attempt(t.Context(), name, &cfg, w)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Granted > 0 {
		t.Fatalf("attempt while held: %v", err)
	}
	for i := range nodes {
		expect(i, "line take "+w.id)
		if n := nodes[i].state(); n.entry(w.id) < 0 {
			t.Fatalf("node %d: the waiter is not in line: %v", i, &n)
		}
		if registered(i, w) == fencing {
			t.Fatalf("node %d: the waiter's value registered: %v, fenced: %v", i, registered(i, w), fencing)
		}
	}
	for range len(nodes) - qe.Refused {
		select {
		case got := <-nodes[0].log:
			checkUndo(t, got, w.id)
		case got := <-nodes[1].log:
			checkUndo(t, got, w.id)
		case got := <-nodes[2].log:
			checkUndo(t, got, w.id)
		case <-time.After(10 * time.Second):
			t.Fatal("the undo of a node that had not answered never ran")
		}
	}
	// Node 2 holds another value (another holder's, say): the release
	// reserves nodes 0 and 1 for the waiter, announced to it alone; or,
	// with its value registered, hands them over to it (L12), announced
	// to it alone with the seq of its request.
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
		case !fencing && (n.key != fmt.Sprint(w.value) || !strings.Contains(got, "announced "+w.id+" ") || n.entry(w.id) >= 0 || registered(i, w)):
			t.Fatalf("node %d after the release (%s): %v, want it handed over to %s (L12)", i, got, &n, w.id)
		}
	}
	if got := expect(2, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 2 announced a release that was not ours: %s", got)
	}
	// The waiter takes the two reservations (or the two locks handed over
	// to it, L12): a lock. The grants took it out of the line on nodes 0
	// and 1; it leaves the line on node 2, where its take was refused,
	// alone (L4), giving back no value.
	l, err := c.attempt(t.Context(), name, &cfg, w)
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
		if n := nodes[i].state(); n.entry(w.id) >= 0 || registered(i, w) {
			t.Fatalf("node %d: the waiter that took the lock is still in line: %v", i, &n)
		}
	}
	// A second waiter: node 2 is free (the other holder's key expired), and
	// it is first in line there; nodes 0 and 1 hold the lock. One grant of
	// three: the attempt fails and undoes it on node 2 alone (line.lua
	// undo), keeping its ticket (nodes refused it: L7 does not apply),
	// which reserves node 2 for the first in line there: itself; or, its
	// value registered again by the undo, hands it over to itself (L12).
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
	announced := "announced " + w2.id + " on " + releasedSuffix + ":" + c.chanID
	if !fencing {
		announced = "on " + releasedSuffix + ":" + c.chanID
		if !strings.Contains(got, "announced "+w2.id+" ") {
			t.Fatalf("the undo on node 2 did not hand the lock over to its waiter: %s", got)
		}
	}
	if !strings.Contains(got, " "+w2.ticket()+" ") || !strings.HasSuffix(got, announced) {
		t.Fatalf("the undo on node 2: %s", got)
	}
	// It gives up: it leaves everywhere, giving back its value, and its
	// reservation (or the lock handed over to it, L12) on node 2 goes to
	// nobody (the line is empty there): the key is deleted, and '1'
	// announced to all.
	c.gaveUp(w2, &cfg, errors.New("gave up"))
	for i := range nodes {
		got := expect(i, "line leave "+w2.id+" "+reserve+" "+fmt.Sprint(w2.value))
		if i == 2 && !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("the leave on node 2: %s", got)
		}
	}
	if n := nodes[2].state(); n.key != "" || n.line != nil || n.grants != nil {
		t.Fatalf("node 2 after the last waiter left: %v", &n)
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

// L12 on the real client (Client.handedOver, Lock.claim): a release hands
// the lock over to the waiter first in line on every node, which registered
// its value with its attempt; once the announcements of a quorum (each
// with the seq the node had) reached it, the waiter holds the lock without
// another attempt, and claims it on every node with line.lua claim, which
// the model reads: it answers 1 where the key holds the value, makes it
// last the TTL, and the waiter is out of the line and G there.
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
	holder, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	w := c.join(name)
	defer w.stop()
	var qe *QuorumError
	if _, err := c.attempt(t.Context(), name, &cfg, w); !errors.As(err, &qe) || qe.Granted > 0 {
		t.Fatalf("attempt while held: %v", err)
	}
	seqs := make([]string, len(nodes))
	for i := range nodes {
		expect(i, "line take "+w.id)
	}
	// The undos of the nodes that had not answered by the decision (A6).
	for range len(nodes) - qe.Refused {
		select {
		case got := <-nodes[0].log:
			checkUndo(t, got, w.id)
		case got := <-nodes[1].log:
			checkUndo(t, got, w.id)
		case got := <-nodes[2].log:
			checkUndo(t, got, w.id)
		case <-time.After(10 * time.Second):
			t.Fatal("the undo of a node that had not answered never ran")
		}
	}
	for i := range nodes {
		n := nodes[i].state()
		g, ok := n.grant(w.id)
		seq, v, _ := strings.Cut(g, ":")
		if !ok || v != fmt.Sprint(w.value) {
			t.Fatalf("node %d: the waiter did not register its value: %v", i, &n)
		}
		seqs[i] = seq
	}
	if l := c.handedOver(t.Context(), name, &cfg, w); l != nil {
		t.Fatal("a lock handed over before any release")
	}
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		got := expect(i, "release")
		want := "announced " + w.id + " " + seqs[i] + " on " + releasedSuffix + ":" + c.chanID
		if n := nodes[i].state(); !strings.HasSuffix(got, want) || n.key != fmt.Sprint(w.value) {
			t.Fatalf("node %d: the release %q, node %v; want it handed over to the waiter, %s", i, got, &n, want)
		}
		// What the node published, as the waiter's subscription hands it
		// over (the model's nodes have no channels).
		w.bell.announced(i, []byte(w.id+" "+seqs[i]))
	}
	l := c.handedOver(t.Context(), name, &cfg, w)
	if l == nil {
		t.Fatal("a quorum handed the lock over, and the waiter does not hold it")
	}
	for i := range nodes {
		got := expect(i, "line claim "+w.id+" "+fmt.Sprint(w.value)+" "+fmt.Sprint(ttl.Milliseconds()))
		n := nodes[i].state()
		if n.key != fmt.Sprint(w.value) || n.keyExp != n.keySet.base+ttl.Milliseconds() || n.entry(w.id) >= 0 || n.grants != nil {
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
}

// checkUndo checks that a node ran id's undo, and that it undid nothing.
func checkUndo(t *testing.T, got, id string) {
	t.Helper()
	if !strings.HasPrefix(got, "line undo "+id) || strings.Contains(got, "announced") {
		t.Fatalf("a node ran %q, want an undo of %s that finds nothing of its own", got, id)
	}
}
