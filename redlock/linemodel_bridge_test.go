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

// A8, L2, L4, L7 on the real client (client.go attempt, Lock.release,
// Client.leave and gaveUp) against nodes that answer as the model does:
// the client's argument layouts are the ones the model (and so the
// scripts) read; a waiter's attempt registers it everywhere; a failed
// attempt in line undoes its grant only where it was not refused, with
// line.lua undo and its ticket unchanged when a node refused it; a
// release reserves for the first in line where the key was the holder's;
// a success in line leaves the line on every node; giving up leaves too,
// passing a reservation on. This ties the client model of the
// interleaving tests to the code.
func TestLineModelFollowsTheClient(t *testing.T) {
	const name = "bridge"
	const tau = 200 * time.Millisecond
	nodes := []*modelPool{newModelPool(t, 0), newModelPool(t, 1), newModelPool(t, 2)}
	pools := []pool.Pool{nodes[0], nodes[1], nodes[2]}
	c := newTestClient(t, pools, WithNodeTimeout(tau), WithTTL(10*time.Second))
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

	// A holder takes the lock with a plain SET NX.
	holder, err := c.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		expect(i, "acquire")
	}
	// A waiter in line is refused everywhere, and registered everywhere;
	// refused everywhere, it undoes nothing (A8).
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
	// reserves nodes 0 and 1 for the waiter, announced to it alone.
	nodes[2].set(func(n *lineNode) { n.key = "another" })
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock with 2 of 3 nodes: %v", err)
	}
	for i := range 2 {
		expect(i, "release")
		if n := nodes[i].state(); n.key != "~r:"+w.id {
			t.Fatalf("node %d after the release: %v", i, &n)
		}
	}
	if got := expect(2, "release"); strings.Contains(got, "announced") {
		t.Fatalf("node 2 announced a release that was not ours: %s", got)
	}
	// The waiter takes the two reservations: a lock. The grants took it
	// out of the line on nodes 0 and 1; it leaves the line on node 2, where
	// its take was refused, alone (L4).
	l, err := c.attempt(t.Context(), name, &cfg, w)
	if err != nil {
		t.Fatalf("attempt on 2 reservations of 3: %v", err)
	}
	for i := range nodes {
		expect(i, "line take "+w.id)
		if i == 2 {
			expect(i, "line leave "+w.id+" "+reserve)
		}
		if n := nodes[i].state(); n.entry(w.id) >= 0 {
			t.Fatalf("node %d: the waiter that took the lock is still in line: %v", i, &n)
		}
	}
	// A second waiter: node 2 is free (the other holder's key expired), and
	// it is first in line there; nodes 0 and 1 hold the lock. One grant of
	// three: the attempt fails and undoes it on node 2 alone (line.lua
	// undo), keeping its ticket (nodes refused it: L7 does not apply),
	// which reserves node 2 for the first in line there: itself.
	w2 := c.join(name)
	defer w2.stop()
	nodes[2].set(func(n *lineNode) { n.key = "" })
	if _, err := c.attempt(t.Context(), name, &cfg, w2); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("attempt with 1 grant of 3: %v", err)
	}
	for i := range nodes {
		expect(i, "line take "+w2.id)
	}
	if got := expect(2, "line undo "+w2.id); !strings.Contains(got, " "+w2.ticket()+" ") || !strings.HasSuffix(got, "announced "+w2.id+" on "+releasedSuffix+":"+c.chanID) {
		t.Fatalf("the undo on node 2: %s", got)
	}
	// It gives up: it leaves everywhere, and its reservation on node 2 goes
	// to nobody (the line is empty there): the key is deleted, and '1'
	// announced to all.
	c.gaveUp(w2, &cfg, errors.New("gave up"))
	for i := range nodes {
		got := expect(i, "line leave "+w2.id)
		if i == 2 && !strings.HasSuffix(got, "announced 1 on "+releasedSuffix) {
			t.Fatalf("the leave on node 2: %s", got)
		}
	}
	if n := nodes[2].state(); n.key != "" || n.line != nil {
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

// checkUndo checks that a node ran id's undo, and that it undid nothing.
func checkUndo(t *testing.T, got, id string) {
	t.Helper()
	if !strings.HasPrefix(got, "line undo "+id) || strings.Contains(got, "announced") {
		t.Fatalf("a node ran %q, want an undo of %s that finds nothing of its own", got, id)
	}
}
