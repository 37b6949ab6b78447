package redlock_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	var (
		mu      sync.Mutex
		current = -1 // the candidate leading now
		last    uint64
		count   int
		errs    []string
	)
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
	var wg sync.WaitGroup
	for i := range candidates {
		_, e := candidate(t, c, "frozen-one-at-a-time")
		wg.Go(func() {
			for ctx.Err() == nil {
				l, err := e.Campaign(ctx, fmt.Sprint("candidate-", i))
				if err != nil {
					return
				}
				mu.Lock()
				if current >= 0 {
					errs = append(errs, fmt.Sprintf("candidate %d leads while %d does", i, current))
				}
				if l.Token() <= last {
					errs = append(errs, fmt.Sprintf("term %d after term %d", l.Token(), last))
				}
				current, last = i, l.Token()
				count++
				// Freeze the next node, thaw the one frozen until now.
				if err := nodes[count%len(nodes)].Pause(); err != nil {
					errs = append(errs, err.Error())
				}
				if err := nodes[(count-1)%len(nodes)].Resume(); err != nil {
					errs = append(errs, err.Error())
				}
				if count >= leaderships {
					cancel()
				}
				current = -1
				mu.Unlock()
				l.Unlock(context.Background())
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if count < leaderships {
		t.Fatalf("%d leaderships in 90s with one node frozen, want %d", count, leaderships)
	}
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
	frozen := c.Nodes()[0]
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for i, ch := range got {
		if w := <-ch; w != nil {
			t.Fatalf("candidate %d: Campaign returned a leadership after its context ended", i)
		}
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
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
