package redlock_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/chaos"
	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// S1, S5 under faults: nodes paused at random (late replies, timeouts,
// grants split between slots) while clients take permits with Acquire and
// TryAcquire, hold them for less or more than their Until(), and give them
// back: never more than K permits stand before their Until() at once, and
// a permit's token is above that of every permit acquired before its call
// began.
func TestSemaphoreBoundUnderPausedNodes(t *testing.T) {
	c := redistest.New(t, 5)
	const name, permits, clients = "sem-review", 2, 6
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	var mu sync.Mutex
	var ivs []chaos.SemHold
	var wg sync.WaitGroup
	nodes := c.Nodes()
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			a, b := rng.IntN(5), rng.IntN(5)
			nodes[a].Pause()
			if rng.IntN(2) == 0 {
				nodes[b].Pause()
			}
			time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
			nodes[a].Resume()
			nodes[b].Resume()
			time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
		}
		for _, n := range nodes {
			n.Resume()
		}
	})
	for i := range clients {
		s := newSemaphore(t, c, name, permits, redlock.WithNodeTimeout(40*time.Millisecond), redlock.WithTTL(300*time.Millisecond), redlock.WithTries(1<<20), redlock.WithFencing())
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for ctx.Err() == nil {
				called := time.Now()
				var l *redlock.Lock
				var err error
				if rng.IntN(3) == 0 {
					l, err = s.TryAcquire(ctx)
				} else {
					l, err = s.Acquire(ctx)
				}
				if err != nil {
					continue
				}
				start := time.Now()
				time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
				end := time.Now()
				if u := l.Until(); u.Before(end) {
					end = u
				}
				l.Unlock(context.WithoutCancel(ctx))
				mu.Lock()
				ivs = append(ivs, chaos.SemHold{Called: called, Start: start, End: end, Token: l.Token()})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	most := chaos.MaxHolders(ivs)
	t.Logf("%d permits, most at once %d", len(ivs), most)
	if most > permits {
		t.Fatalf("%d holders at once, permits %d", most, permits)
	}
	if bad := chaos.TokenOrder(ivs); bad > 0 {
		t.Fatalf("S5: %d permits' tokens not above that of every permit acquired before their call", bad)
	}
}

// L4, S4: a semaphore waiter whose context ends leaves the line on every
// node (its entry would otherwise live 20s: a node timeout of 5s), Acquire
// returns no permit, and the permit given back afterwards is reserved for
// nobody.
func TestSemaphoreWaiterThatGivesUpLeavesNoTrace(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "sem-give-up"
	holder := newSemaphore(t, c, name, 1)
	waiter := newSemaphore(t, c, name, 1, redlock.WithTries(1<<20), redlock.WithNodeTimeout(5*time.Second))
	l, err := holder.TryAcquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	got := waitForPermit(ctx, waiter)
	inLineAt(t, c, redlock.SemaphoreLineKey(name), 1)
	cancel()
	if w := <-got; w != nil {
		t.Fatal("Acquire returned a permit after its context ended")
	}
	inLineAt(t, c, redlock.SemaphoreLineKey(name), 0)
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		if v, _ := n.Do("GET", redlock.SemaphoreSlotKey(name, 0)); v != nil {
			t.Fatalf("slot 0 on %s after the release = %q, want deleted", n.Addr(), v)
		}
	}
}
