package redlock_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// V1, V2 with a frozen node: candidates on separate clients campaign over
// and over while one node of five at a time is frozen with its socket open
// (SIGSTOP: requests time out instead of failing fast), a different one
// after each leadership: never two leaders at once, every term greater than
// the previous one, and the election keeps making leaders.
func TestElectionOneLeaderAtATimeWithAFrozenNode(t *testing.T) {
	c := redistest.New(t, 5)
	nodes := c.Nodes()
	const candidates, leaderships = 4, 15
	s := newLeaderships()
	if err := nodes[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, n := range nodes {
			n.Resume()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	campaignOverAndOver(ctx, t, c, "frozen-one-at-a-time", candidates, func(i int, l *redlock.Lock) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lead(i, l)
		// Freeze the next node, thaw the one frozen until now.
		if err := nodes[s.count%len(nodes)].Pause(); err != nil {
			s.errs = append(s.errs, err.Error())
		}
		if err := nodes[(s.count-1)%len(nodes)].Resume(); err != nil {
			s.errs = append(s.errs, err.Error())
		}
		if s.count >= leaderships {
			cancel()
		}
		s.current = -1
	})
	s.check(t, leaderships, "90s with one node frozen")
}

// V1, L4, L9: candidates of one client waiting behind a leader give up
// (their context ends) while a node is frozen, so that some of their round
// trips are under way: no Campaign returns a leadership, none of them is
// left waiting in the client or in the line of any node once the node
// thaws, and after the leader resigns a candidate of another client leads.
func TestCampaignsEndWithTheirContextWhileANodeIsFrozen(t *testing.T) {
	c := redistest.New(t, 3)
	const name, waiting = "frozen-ctx-end", 3
	_, a := candidate(t, c, name)
	cl, b := candidate(t, c, name)
	_, d := candidate(t, c, name)
	l, err := a.Campaign(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make([]<-chan *redlock.Lock, waiting)
	for i := range got {
		got[i] = campaign(ctx, b, fmt.Sprint("b-", i))
	}
	waitFor(t, "all the candidates wait in the client", func() bool { return redlock.Waiting(cl, redlock.ElectionPrefix+name) == waiting })
	inLine(t, c, redlock.ElectionPrefix+name, 1)
	cancelWhileFrozen(t, c, cancel, got, "candidate", "Campaign returned a leadership")
	if n := redlock.Waiting(cl, redlock.ElectionPrefix+name); n != 0 {
		t.Fatalf("%d candidates still wait in the client after their context ended, want 0", n)
	}
	inLine(t, c, redlock.ElectionPrefix+name, 0)
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer dcancel()
	ld, err := d.Campaign(dctx, "d")
	if err != nil {
		t.Fatalf("Campaign after the leader resigned and the others gave up: %v", err)
	}
	defer ld.Unlock(t.Context())
	if ld.Token() <= l.Token() {
		t.Fatalf("term %d after term %d (V2)", ld.Token(), l.Token())
	}
	leaderIs(t, d, redlock.Leader{Value: "d", Token: ld.Token()})
}
