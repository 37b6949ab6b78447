package redlock_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// F1, F2, E5: tokens strictly increase across acquisitions, survive Unlock
// (the counter is never deleted), and Extend keeps them.
func TestFencingTokensIncrease(t *testing.T) {
	c := redistest.New(t, 5)
	cl := newClient(t, c, redlock.WithFencing(), redlock.WithNodeTimeout(500*time.Millisecond))
	var last uint64
	for i := range 20 {
		l, err := cl.TryLock(t.Context(), "fenced")
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() <= last {
			t.Fatalf("acquisition %d: Token() = %d, want > %d", i, l.Token(), last)
		}
		last = l.Token()
		if err := l.Extend(t.Context(), 5*time.Second); err != nil || l.Token() != last {
			t.Fatalf("Extend = %v, Token() = %d after it; want nil and %d", err, l.Token(), last)
		}
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// A node can lag (an Unlock's straggling DEL met the next SET there),
	// but a quorum holds the last token (F3), and none holds more.
	settled(t, c, "fenced", 0)
	atLast := 0
	for _, n := range c.Nodes() {
		v, err := redis.Uint64(n.Do("GET", redlock.CounterKey("fenced")))
		if err != nil || v > last {
			t.Fatalf("counter on %s = %d, %v after Unlock; want <= %d", n.Addr(), v, err, last)
		}
		if v == last {
			atLast++
		}
		if ttl, _ := redis.Int64(n.Do("TTL", redlock.CounterKey("fenced"))); ttl != -1 {
			t.Fatalf("counter on %s has TTL %d, want none (-1)", n.Addr(), ttl)
		}
	}
	if atLast < 3 {
		t.Fatalf("%d nodes hold the last token %d, want a quorum of 3", atLast, last)
	}
	plain := newClient(t, c)
	l, err := plain.TryLock(t.Context(), "unfenced")
	if err != nil || l.Token() != 0 {
		t.Fatalf("TryLock without fencing = %v, Token() = %d; want 0", err, l.Token())
	}
	l.Unlock(t.Context())
}

// F3, F4: counters diverge (attempts that reached only a minority raised
// node 0's counter), the next acquisition's quorum includes node 0, and the
// one after excludes it. The token must still exceed every earlier one: only
// the write-back of Phase B carries node 0's high count to the others.
// Nodes keep their data across restarts (AOF, appendfsync always: N2).
func TestFencingWriteBackAfterDivergence(t *testing.T) {
	c := redistest.New(t, 5, redistest.WithAOF())
	n := c.Nodes()
	cl := newClient(t, c, redlock.WithFencing(), redlock.WithTTL(time.Second), redlock.WithNodeTimeout(200*time.Millisecond))
	first, err := cl.TryLock(t.Context(), "diverge")
	if err != nil {
		t.Fatal(err)
	}
	first.Unlock(t.Context())
	settled(t, c, "diverge", 0)

	// Only node 0 is up: five attempts reach it alone and fail, each one
	// raising its counter.
	for _, x := range n[1:] {
		if err := x.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := cl.TryLock(t.Context(), "diverge"); !errors.Is(err, redlock.ErrNotAcquired) {
			t.Fatalf("TryLock with 1 of 5 up = %v, want ErrNotAcquired", err)
		}
		// The failed attempt releases node 0 in the background (A8); the
		// next one must find the key free to raise the counter again.
		for holders(t, c, "diverge") != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	high, _ := redis.Uint64(n[0].Do("GET", redlock.CounterKey("diverge")))
	if high != first.Token()+5 {
		t.Fatalf("node 0's counter = %d, want %d", high, first.Token()+5)
	}

	// A's quorum: nodes 0, 1, 2 (3 and 4 stay down). Node 0 returns the
	// high count, 1 and 2 the low one: no fast path, Phase B raises them.
	for _, x := range n[1:3] {
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
	}
	fenced0, fast0 := redlock.FencingStats(cl)
	a, err := cl.TryLock(t.Context(), "diverge")
	if err != nil {
		var state []string
		for _, x := range n {
			if x.Running() {
				k, _ := redis.String(x.Do("GET", redlock.LockKey("diverge")))
				ctr, _ := redis.String(x.Do("GET", redlock.CounterKey("diverge")))
				state = append(state, x.Addr()+" key="+k+" counter="+ctr)
			}
		}
		t.Fatalf("A: %v\nnodes: %v", err, state)
	}
	if fenced, fast := redlock.FencingStats(cl); fenced-fenced0 != 1 || fast != fast0 {
		t.Fatalf("A took the fast path (stats %d/%d -> %d/%d); the test needs Phase B", fenced0, fast0, fenced, fast)
	}
	if a.Token() != high+1 {
		t.Fatalf("A's token = %d, want node 0's %d + 1", a.Token(), high)
	}
	a.Unlock(t.Context())

	// B's quorum excludes node 0: nodes 1-4. Any 3 of them include node 1
	// or 2, which hold A's token now.
	if err := n[0].Kill(); err != nil {
		t.Fatal(err)
	}
	for _, x := range n[3:] {
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := cl.TryLock(t.Context(), "diverge")
	if err != nil {
		t.Fatalf("B: %v", err)
	}
	if b.Token() <= a.Token() {
		t.Fatalf("B's token = %d after A's %d: tokens went back (no write-back?)", b.Token(), a.Token())
	}
	b.Unlock(t.Context())
}

// F4, F5 under faults: hundreds of acquisitions of one name by several
// clients while up to two of five nodes are frozen and resumed at random.
// Tokens, in acquisition order, strictly increase and never repeat. It
// reports how often the fast path (F2) was taken.
func TestFencingUnderRandomFreezes(t *testing.T) {
	c := redistest.New(t, 5)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const ttl = 500 * time.Millisecond
	clients := make([]*redlock.Client, 4)
	for i := range clients {
		clients[i] = newClient(t, c, redlock.WithFencing(), redlock.WithTTL(ttl), redlock.WithNodeTimeout(30*time.Millisecond),
			redlock.WithTries(1_000_000), redlock.WithRetryDelay(func(int) time.Duration { return time.Duration(1+rand.N(5)) * time.Millisecond }))
	}
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() { // at most two nodes frozen at once: in the model
		defer chaos.Done()
		frozen := map[int]bool{}
		for {
			select {
			case <-stop:
				for i := range frozen {
					c.Nodes()[i].Resume()
				}
				return
			case <-time.After(time.Duration(20+rng.IntN(60)) * time.Millisecond):
			}
			i := rng.IntN(5)
			if frozen[i] {
				c.Nodes()[i].Resume()
				delete(frozen, i)
			} else if len(frozen) < 2 {
				c.Nodes()[i].Pause()
				frozen[i] = true
			}
		}
	}()
	var mu sync.Mutex
	var tokens []uint64
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // liveness: bounded wait
	defer cancel()
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 75 {
				l, err := cl.Lock(ctx, "fenced-chaos")
				if err != nil {
					errs <- err
					return
				}
				// Holding the lock: record the token in acquisition order.
				mu.Lock()
				tokens = append(tokens, l.Token())
				mu.Unlock()
				l.Unlock(t.Context())
			}
		}()
	}
	wg.Wait()
	close(stop)
	chaos.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("token %d = %d after %d (seed %d): not strictly increasing", i, tokens[i], tokens[i-1], seed)
		}
	}
	var fenced, fast int64
	for _, cl := range clients {
		f, ff := redlock.FencingStats(cl)
		fenced, fast = fenced+f, fast+ff
	}
	if len(tokens) < 300 {
		t.Fatalf("only %d acquisitions", len(tokens))
	}
	t.Logf("%d acquisitions, tokens %d..%d strictly increasing; fast path %d of %d fenced quorums (%.1f%%)",
		len(tokens), tokens[0], tokens[len(tokens)-1], fast, fenced, 100*float64(fast)/float64(fenced))
}

// Check reports what breaks the deployment rules, per node.
func TestCheckReportsUnsafeNodes(t *testing.T) {
	good := redistest.New(t, 3, redistest.WithAOF())
	if err := newClient(t, good, redlock.WithFencing()).Check(t.Context()); err != nil {
		t.Fatalf("Check on AOF masters with noeviction = %v, want nil", err)
	}
	c := redistest.New(t, 3)
	if err := newClient(t, c).Check(t.Context()); err != nil {
		t.Fatalf("Check without fencing on masters with noeviction = %v, want nil", err)
	}
	c.Nodes()[0].Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	c.Nodes()[1].Do("REPLICAOF", "127.0.0.1", "1")
	err := newClient(t, c, redlock.WithFencing()).Check(t.Context())
	if !errors.Is(err, redlock.ErrUnsafeDeployment) {
		t.Fatalf("Check = %v, want ErrUnsafeDeployment", err)
	}
	msg := err.Error()
	for _, want := range []string{
		c.Nodes()[0].Addr() + `: redlock: unsafe deployment: maxmemory-policy is "allkeys-lru"`,
		c.Nodes()[1].Addr() + `: redlock: unsafe deployment: N1: role is "slave"`,
		c.Nodes()[2].Addr() + `: redlock: unsafe deployment: appendonly is "no"`,
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("Check = %q, want it to mention %q", msg, want)
		}
	}
	var ne *redlock.NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("Check = %v, want *NodeError entries", err)
	}
}
