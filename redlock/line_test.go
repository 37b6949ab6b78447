package redlock_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/chaos"
	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// inLine waits until every running node has want entries in the line of
// name, and returns node 0's line (waiter id -> "ticket:expiry").
func inLine(t *testing.T, c *redistest.Cluster, name string, want int) map[string]string {
	t.Helper()
	return inLineAt(t, c, redlock.LineKey(name), want)
}

// inLineAt is inLine for the line at key (a lock's, or a semaphore's).
func inLineAt(t *testing.T, c *redistest.Cluster, key string, want int) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		var line map[string]string
		for i, n := range c.Nodes() {
			m, err := redis.StringMap(n.Do("HGETALL", key))
			if err != nil {
				t.Fatalf("HGETALL on %s: %v", n.Addr(), err)
			}
			if len(m) != want {
				ok = false
			}
			if i == 0 {
				line = m
			}
		}
		if ok {
			return line
		}
		if time.Now().After(deadline) {
			for _, n := range c.Nodes() {
				m, _ := redis.StringMap(n.Do("HGETALL", key))
				v, _ := redis.String(n.Do("GET", strings.TrimSuffix(key, ":line"))) // a lock's key
				t.Logf("%s: line %v key %q", n.Addr(), m, v)
			}
			t.Fatalf("line %q does not hold %d waiters on every node after 10s", key, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// heldEverywhere waits until every node holds the key of name: TryLock
// returns once a quorum granted, and a waiter that joins the line while
// the last node has not yet run the holder's SET would be granted that
// node, leaving no entry there.
func heldEverywhere(t *testing.T, c *redistest.Cluster, name string) {
	t.Helper()
	onEveryNode(t, c, "the lock is held on every node", func(n *redistest.Node) bool {
		v, _ := n.Do("EXISTS", redlock.LockKey(name))
		return v == int64(1)
	})
}

// freeEverywhere waits until no node holds the key of name: Unlock returns
// once a quorum released, and the last node may run its release later.
func freeEverywhere(t *testing.T, c *redistest.Cluster, name string) {
	t.Helper()
	onEveryNode(t, c, "the key is free on every node", func(n *redistest.Node) bool {
		v, _ := n.Do("EXISTS", redlock.LockKey(name))
		return v == int64(0)
	})
}

// onEveryNode waits until cond holds on every node of c.
func onEveryNode(t *testing.T, c *redistest.Cluster, what string, cond func(n *redistest.Node) bool) {
	t.Helper()
	waitUntil(t, 10*time.Second, what, func() bool {
		for _, n := range c.Nodes() {
			if !cond(n) {
				return false
			}
		}
		return true
	})
}

// waitForLock runs Lock in the background and reports on the channel.
func waitForLock(ctx context.Context, cl *redlock.Client, name string) <-chan *redlock.Lock {
	return inBackground(func() (*redlock.Lock, error) { return cl.Lock(ctx, name) })
}

// inBackground runs take in a goroutine and reports its lock on the
// channel (nil when it failed).
func inBackground(take func() (*redlock.Lock, error)) <-chan *redlock.Lock {
	got := make(chan *redlock.Lock, 1)
	go func() {
		l, err := take()
		if err != nil {
			l = nil
		}
		got <- l
	}()
	return got
}

// waitBehind has holder take name and waiter's Lock call wait for it in
// line; before, when not nil, runs once the holder holds it, before the
// waiter asks. It returns the holder's lock and where the waiter's comes.
func waitBehind(t *testing.T, c *redistest.Cluster, holder, waiter *redlock.Client, name string, before func()) (*redlock.Lock, <-chan *redlock.Lock) {
	t.Helper()
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	if before != nil {
		before()
	}
	got := waitForLock(t.Context(), waiter, name)
	inLine(t, c, name, 1)
	return l, got
}

// waitedBefore makes waiter's client wait for name once and keep the
// name's channels for as long as the test runs (L10; the default linger of
// 10 s would be a timing target on a loaded machine): its next Lock call
// on name joins the line at once (L11), and no subscription's confirmation
// wakes it for an attempt more.
func waitedBefore(t *testing.T, c *redistest.Cluster, holder, waiter *redlock.Client, name string) {
	t.Helper()
	redlock.SetLinger(waiter, time.Hour)
	waitOnce(t, c, holder, waiter, name)
}

// handOver releases held and returns the lock its waiter took.
func handOver(t *testing.T, held *redlock.Lock, got <-chan *redlock.Lock) *redlock.Lock {
	t.Helper()
	if err := held.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if w == nil {
		t.Fatal("the waiter's Lock failed")
	}
	return w
}

// L1, L2: waiters of separate clients (as separate service instances) are
// served in the order they arrived, one release after the other.
func TestLineServesInArrivalOrder(t *testing.T) {
	c := redistest.New(t, 5)
	const name, waiters = "line-order", 6
	opts := []redlock.Option{redlock.WithTries(1000), redlock.WithNodeTimeout(200 * time.Millisecond)}
	holder := newClient(t, c, opts...)
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	got := make([]<-chan *redlock.Lock, waiters)
	for i := range waiters {
		got[i] = waitForLock(t.Context(), newClient(t, c, opts...), name)
		inLine(t, c, name, i+1) // in line on every node before the next arrives
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range waiters {
		var w *redlock.Lock
		select {
		case w = <-got[i]:
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d (arrived %d-th) not served 10s after its turn", i, i+1)
		}
		if w == nil {
			t.Fatalf("waiter %d: Lock failed", i)
		}
		for j := i + 1; j < waiters; j++ { // nobody behind it was served first
			select {
			case <-got[j]:
				t.Fatalf("waiter %d served before waiter %d, who arrived first", j, i)
			default:
			}
		}
		if err := w.Unlock(t.Context()); err != nil {
			t.Fatalf("waiter %d: Unlock: %v", i, err)
		}
	}
	inLine(t, c, name, 0) // everyone left the line
}

// L5, L2: while a waiter is in line, a release reserves the lock for it:
// a TryLock right after the release is refused, and the waiter gets it.
func TestTryLockRefusedWhileOthersWait(t *testing.T) {
	c := redistest.New(t, 5)
	const name = "line-trylock"
	holder, other := newClient(t, c), newClient(t, c)
	waiter := newClient(t, c, redlock.WithTries(1000))
	for round := range 20 {
		l, err := holder.TryLock(t.Context(), name)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		heldEverywhere(t, c, name)
		got := waitForLock(t.Context(), waiter, name)
		inLine(t, c, name, 1)
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		if b, err := other.TryLock(t.Context(), name); err == nil {
			b.Unlock(t.Context())
			t.Fatalf("round %d: TryLock took the lock released while a waiter was in line", round)
		} else if !errors.Is(err, redlock.ErrNotAcquired) {
			t.Fatalf("round %d: TryLock = %v, want ErrNotAcquired", round, err)
		}
		w := <-got
		if w == nil {
			t.Fatalf("round %d: the waiter's Lock failed", round)
		}
		w.Unlock(t.Context())
		// Unlock returns once a quorum released: the next round's TryLock
		// must not find a straggling node still held, or the waiter's
		// take would be granted there and leave no entry to count.
		freeEverywhere(t, c, name)
	}
}

// L3, L4, L12: a waiter that stops while first in line (it dies, freezes
// or is cut off: it never attempts again) holds the next waiter back for a
// few node timeouts (its entry's lifetime, then a reservation made for it,
// or a lock handed over to it for as long), never for a TTL.
func TestDeadWaiterHoldsLineBackBriefly(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  uint64 // not 0: the dead waiter registered its value, and is handed the lock (L12)
	}{{"reserved for it", 0}, {"handed over to it", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.New(t, 3)
			const name = "line-dead"
			const tau = 200 * time.Millisecond
			const ttl = 10 * time.Second
			opts := []redlock.Option{redlock.WithTTL(ttl), redlock.WithNodeTimeout(tau), redlock.WithTries(1000)}
			holder, live := newClient(t, c, opts...), newClient(t, c, opts...)
			l, err := holder.TryLock(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			heldEverywhere(t, c, name)
			got := waitForLock(t.Context(), live, name)
			line := inLine(t, c, name, 1)
			// The dead waiter arrived long before the live one, and registered
			// just now: its entry lives 4 tau more, and it is first everywhere.
			var liveTicket int64
			for _, v := range line {
				liveTicket, _ = strconv.ParseInt(strings.Split(v, ":")[0], 10, 64)
			}
			for _, n := range c.Nodes() {
				if _, err := redlock.LineTake(n.Do, name, "wdead", liveTicket-1_000_000, 4*tau, tc.seq); err != nil {
					t.Fatal(err)
				}
			}
			released := time.Now()
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
			if tc.seq != 0 {
				// The quorum that released handed the key over to the dead
				// waiter, for 4 tau (long enough to be seen here).
				handed := 0
				for _, n := range c.Nodes() {
					if v, _ := redis.String(n.Do("GET", redlock.LockKey(name))); v == "dead-waiter-value" {
						handed++
					}
				}
				if handed < 2 {
					t.Fatalf("%d nodes hold the dead waiter's value after the release, want a quorum handed over to it", handed)
				}
			}
			var w *redlock.Lock
			select {
			case w = <-got:
			case <-time.After(ttl):
				t.Fatal("the live waiter was held back for a whole TTL by a dead one")
			}
			if w == nil {
				t.Fatal("the live waiter's Lock failed")
			}
			waited := time.Since(released)
			w.Unlock(t.Context())
			t.Logf("live waiter served %v after the release (dead waiter first in line; bound about 9 tau = %v)", waited, 9*tau)
			if waited > ttl/2 {
				t.Fatalf("the live waiter was served %v after the release: held back about a TTL, not a few node timeouts", waited)
			}
		})
	}
}

// L6: nodes that disagree about who is first (one lost the line, as a
// restart without data would; another puts the second waiter first) cost
// progress only until the waiters' attempts give every node the same line:
// both waiters are served, one at a time.
func TestLineSurvivesALostRegistration(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-diverge"
	opts := []redlock.Option{redlock.WithTries(1000), redlock.WithNodeTimeout(100 * time.Millisecond)}
	holder := newClient(t, c, opts...)
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	first := waitForLock(t.Context(), newClient(t, c, opts...), name)
	inLine(t, c, name, 1)
	second := waitForLock(t.Context(), newClient(t, c, opts...), name)
	line := inLine(t, c, name, 2)
	nodes := c.Nodes()
	if _, err := nodes[0].Do("DEL", redlock.LineKey(name)); err != nil { // lost the line
		t.Fatal(err)
	}
	var last string // the second to arrive: put first on node 1
	var lastTicket int64
	for id, v := range line {
		if tk, _ := strconv.ParseInt(strings.Split(v, ":")[0], 10, 64); tk > lastTicket {
			last, lastTicket = id, tk
		}
	}
	if _, err := nodes[1].Do("HSET", redlock.LineKey(name), last, "1:"+strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Which one is served first depends on which node reserved for whom:
	// the order is lost while the nodes disagree; progress is not.
	pending := []<-chan *redlock.Lock{first, second}
	for len(pending) > 0 {
		select {
		case w := <-pending[0]:
			if w == nil {
				t.Fatal("a waiter's Lock failed")
			}
			w.Unlock(t.Context())
			pending = pending[1:]
		case w := <-pending[len(pending)-1]:
			if w == nil {
				t.Fatal("a waiter's Lock failed")
			}
			w.Unlock(t.Context())
			pending = pending[:len(pending)-1]
		case <-time.After(10 * time.Second):
			t.Fatalf("%d waiters not served 10s after the release: the disagreeing nodes stalled the line", len(pending))
		}
	}
	inLine(t, c, name, 0)
}

// L7: a waiter that is alive but cannot complete its turn (its round trips
// to a majority of the nodes take longer than its node timeout: a far-away
// instance, or one cut off from most nodes) goes to the back of the line
// after each failed turn, instead of holding every node reserved for itself
// while the others wait. Before this rule, a healthy client's Lock failed
// at the end of its context, although no node was faulty.
func TestHeadThatCannotCompleteGoesToTheBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(p *chaos.Proxy)
		kill  bool // node 4 is down too: the healthy client has a bare majority
	}{
		{"slow links", func(p *chaos.Proxy) { p.SetDelay(80 * time.Millisecond) }, false},
		{"cut off, one node down", func(p *chaos.Proxy) { p.Cut() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.New(t, 5)
			addrs := c.Addrs()
			name := "line-hostage-" + strings.ReplaceAll(tc.name, " ", "-")
			opts := []redlock.Option{redlock.WithTries(1 << 20)} // default tau 50ms
			holder, healthy := newClient(t, c, opts...), newClient(t, c, opts...)
			// The stuck waiter reaches nodes 0 and 1 directly, and nodes 2-4
			// through proxies that the fault slows down or cuts.
			stuckAddrs := slices.Clone(addrs)
			var proxies []*chaos.Proxy
			for i := 2; i < 5; i++ {
				p, err := chaos.NewProxy(addrs[i])
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				stuckAddrs[i], proxies = p.Addr(), append(proxies, p)
			}
			stuck := newClientOn(t, newPools(t, stuckAddrs), opts...)
			// Set-up, with retries: on a loaded machine a first attempt on
			// new connections can miss the 50ms node timeout.
			setup, cancelSetup := context.WithTimeout(t.Context(), 10*time.Second)
			l, err := holder.Lock(setup, name)
			cancelSetup()
			if err != nil {
				t.Fatal(err)
			}
			heldEverywhere(t, c, name)
			stuckCtx, stopStuck := context.WithCancel(t.Context())
			defer stopStuck()
			stuckDone := waitForLock(stuckCtx, stuck, name)
			inLine(t, c, name, 1) // first in line, on every node
			for _, p := range proxies {
				tc.fault(p)
			}
			if tc.kill {
				if err := c.Nodes()[4].Kill(); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got := waitForLock(ctx, healthy, name)
			inLineAtLeast(t, c.Nodes()[:2], name, 2)
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
			w := <-got
			if w == nil {
				t.Fatal("a healthy client's Lock failed while a stuck waiter was first in line")
			}
			w.Unlock(t.Context())
			stopStuck()
			if s := <-stuckDone; s != nil {
				s.Unlock(t.Context())
			}
		})
	}
}

// inLineAtLeast waits until each of nodes has at least want entries in the
// line of name.
func inLineAtLeast(t *testing.T, nodes []*redistest.Node, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for {
			k, err := redis.Int(n.Do("HLEN", redlock.LineKey(name)))
			if err == nil && k >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("line of %q on %s has %d entries after 10s, want %d (%v)", name, n.Addr(), k, want, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// L8, L12: an ACL user with every right of the line but HGET (an ACL
// written for a version before the hand-over) keeps the line: a waiter is
// served by a reservation instead of a hand-over, and Check says so.
func TestLineWithoutHGetReservesInstead(t *testing.T) {
	c := redistest.New(t, 3)
	for _, node := range c.Nodes() {
		if _, err := node.Do("ACL", "SETUSER", "nohget", "on", ">pw", "~redlock:*", "&redlock:*", "-@all",
			"+set", "+get", "+del", "+pexpire", "+incr", "+type", "+hgetall", "+hset", "+hdel", "+time",
			"+eval", "+evalsha", "+script|load", "+publish", "+subscribe", "+unsubscribe", "+ping", "+info", "+config|get"); err != nil {
			t.Fatal(err)
		}
	}
	const name = "line-no-hget"
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(200 * time.Millisecond)}
	holder := newClientOn(t, newPools(t, c.Addrs(), pool.WithUsername("nohget"), pool.WithPassword("pw")), opts...)
	waiter := newClientOn(t, newPools(t, c.Addrs(), pool.WithUsername("nohget"), pool.WithPassword("pw")), opts...)
	if err := holder.Check(t.Context()); !errors.Is(err, redlock.ErrDegraded) || !strings.Contains(err.Error(), "+hget") || strings.Contains(err.Error(), "no order") {
		t.Fatalf("Check without HGET = %v, want ErrDegraded about the hand-over only", err)
	}
	l, got := waitBehind(t, c, holder, waiter, name, nil) // the line works: the waiter is in it
	defer handOver(t, l, got).Unlock(t.Context())
	if n := redlock.HandOvers(waiter); n != 0 {
		t.Fatalf("%d locks handed over without HGET, want 0 (reserved instead)", n)
	}
}

// L8: an ACL user with the rights of earlier versions (no HGETALL, HSET,
// HDEL, TIME) gets plain Redlock: locks are taken, waited for and released,
// without the line; Check reports the node as degraded.
func TestLineWithoutItsRightsFallsBack(t *testing.T) {
	c := redistest.New(t, 3)
	for _, node := range c.Nodes() {
		if _, err := node.Do("ACL", "SETUSER", "old", "on", ">pw", "~redlock:*", "&redlock:*", "-@all",
			"+set", "+get", "+del", "+pexpire", "+incr", "+type", "+eval", "+evalsha", "+script|load",
			"+publish", "+subscribe", "+unsubscribe", "+ping", "+info", "+config|get"); err != nil {
			t.Fatal(err)
		}
	}
	const name = "line-old-acl"
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(200 * time.Millisecond)}
	holder := newClientOn(t, newPools(t, c.Addrs(), pool.WithUsername("old"), pool.WithPassword("pw")), opts...)
	waiter := newClientOn(t, newPools(t, c.Addrs(), pool.WithUsername("old"), pool.WithPassword("pw")), opts...)
	if err := holder.Check(t.Context()); !errors.Is(err, redlock.ErrDegraded) || !strings.Contains(err.Error(), "line") {
		t.Fatalf("Check with the old rights = %v, want ErrDegraded about the line", err)
	}
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := waitForLock(ctx, waiter, name)
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock with the old rights = %v, want nil", err)
	}
	w := <-got
	if w == nil {
		t.Fatal("a waiter with the old rights never got the lock")
	}
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock with the old rights = %v, want nil", err)
	}
	settled(t, c, name, 0)
}

// ownChannels waits until every node has want clients' own release
// channels of name subscribed (L10: one per client, while any of its
// waiters waits and for the linger after).
func ownChannels(t *testing.T, c *redistest.Cluster, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes() {
		for {
			chans, err := redis.Strings(n.Do("PUBSUB", "CHANNELS", redlock.LockKey(name)+":released:*"))
			if err == nil && len(chans) == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters' channels of %q on %s after 10s, want %d (%v)", len(chans), name, n.Addr(), want, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// L9, L1: a client's own waiters for one name take turns among themselves:
// only the first stands in the line on the nodes (the others cost the
// nodes nothing), and each enters it with the ticket of its own arrival,
// so the order across clients is still the order of arrival.
func TestClientsOwnWaitersKeepArrivalOrder(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-local"
	opts := []redlock.Option{redlock.WithTries(1 << 20), redlock.WithNodeTimeout(200 * time.Millisecond)}
	holder, one, other := newClient(t, c, opts...), newClient(t, c, opts...), newClient(t, c, opts...)
	l, a1 := waitBehind(t, c, holder, one, name, nil)
	a2 := waitForLock(t.Context(), one, name) // the same client's second waiter
	waiting(t, one, name, 2)
	b := waitForLock(t.Context(), other, name)
	inLine(t, c, name, 2) // a1 and b stand in line; a2 waits in its client
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, got := range []<-chan *redlock.Lock{a1, a2, b} {
		var w *redlock.Lock
		select {
		case w = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d (by arrival) not served 10s after its turn", i)
		}
		if w == nil {
			t.Fatalf("waiter %d: Lock failed", i)
		}
		if i == 0 {
			select {
			case <-b:
				t.Fatal("the other client's waiter was served before the first client's second waiter, which arrived earlier")
			default:
			}
		}
		w.Unlock(t.Context())
	}
}

// L4, L10: a waiter whose context ends while it waits in line leaves it on
// every node, and stops listening: no entry is left behind for the next
// release to reserve for, and its client's subscription ends with the
// linger (shortened here).
func TestWaiterThatGivesUpLeavesNoTrace(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-give-up"
	holder := newClient(t, c)
	// A node timeout of 5s gives its entry a lifetime of 20s: longer than
	// inLine's 10s, so an empty line below is the leaving, not expiry.
	waiter := newClient(t, c, redlock.WithTries(1<<20), redlock.WithNodeTimeout(5*time.Second))
	redlock.SetLinger(waiter, 50*time.Millisecond)
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	heldEverywhere(t, c, name)
	ctx, cancel := context.WithCancel(t.Context())
	got := waitForLock(ctx, waiter, name)
	inLine(t, c, name, 1)
	ownChannels(t, c, name, 1)
	cancel() // the caller gives up mid-wait
	if w := <-got; w != nil {
		t.Fatal("Lock returned a lock after its context ended, while the lock was held")
	}
	inLine(t, c, name, 0)
	waiting(t, waiter, name, 0)
	ownChannels(t, c, name, 0)
}

// waiting waits until want of cl's own Lock callers wait for name.
func waiting(t *testing.T, cl *redlock.Client, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for redlock.Waiting(cl, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the client's callers wait for %q after 10s, want %d", redlock.Waiting(cl, name), name, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// L2, R1: a node out of memory (noeviction) refuses SET but not DEL: a
// release that cannot write the reservation for the first in line falls
// back to a plain delete, instead of failing and leaving the key for a TTL.
func TestReleaseWithWaitersOnANodeOutOfMemory(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-oom"
	holder := newClient(t, c)
	waiter := newClient(t, c, redlock.WithTries(1<<20))
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	got := waitForLock(t.Context(), waiter, name)
	inLine(t, c, name, 1)
	for _, n := range c.Nodes() {
		if _, err := n.Do("CONFIG", "SET", "maxmemory", "1"); err != nil {
			t.Fatal(err)
		}
	}
	err = l.Unlock(t.Context())
	for _, n := range c.Nodes() {
		n.Do("CONFIG", "SET", "maxmemory", "0")
	}
	if err != nil {
		t.Fatalf("Unlock with waiters on nodes out of memory = %v, want nil (a plain delete)", err)
	}
	if w := <-got; w == nil {
		t.Fatal("the waiter never got the lock once memory was back")
	} else {
		w.Unlock(t.Context())
	}
}

// L4, L12: a waiter served sends no leave at all: one request per node
// fewer for every acquisition that waited. Here the lock is handed over
// (L12) and released within claimAfter, so it is never claimed either: on
// one node, the holder's release that hands it over and the waiter's
// release that takes its entry out are the only scripts run, and nothing
// of the waiter is left in the line.
func TestGrantTakesTheWaiterOutOfTheLine(t *testing.T) {
	const name = "line-grant-leaves"
	n, waiter, w := handedOverOnOneNode(t, name, func(n *redistest.Node) { resetStats(t, n) })
	// The waiter's release is queued behind anything it sent before on the
	// node's connection: once it returns, a leave or a claim would have run.
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k := calls(t, n, "evalsha"); k != 2 {
		t.Fatalf("the node ran %d scripts for the two releases, want 2 (no leave, no claim)", k)
	}
	if line, err := redis.Int(n.Do("HLEN", redlock.LineKey(name))); err != nil || line != 0 {
		t.Fatalf("after the waiter's release its line holds %d entries (%v), want none", line, err)
	}
	if k := redlock.Claims(waiter); k != 0 || !redlock.ClaimDecided(w) {
		t.Fatalf("%d claims sent for a lock released within claimAfter, the claim dropped: %v; want none sent, and dropped", k, redlock.ClaimDecided(w))
	}
}

// L11: a client that waited for a name a moment ago makes its next Lock
// call's first attempt in the line: no plain SET NX, which the held key or
// its reservation would refuse anyway, and which could take a free key
// ahead of those in line. With the lock free and nobody in line that
// attempt takes it at once and leaves no entry behind (L4).
func TestRecentWaiterEntersTheLineAtOnce(t *testing.T) {
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	const name = "line-recent"
	// Node timeouts of seconds: no request fails on a loaded machine, so
	// the only SETs are the ones counted.
	holder := newClient(t, c, redlock.WithNodeTimeout(5*time.Second))
	waiter := newClient(t, c, redlock.WithNodeTimeout(5*time.Second))
	// The first wait: a plain first attempt, refused, then the line.
	waitedBefore(t, c, holder, waiter, name)
	// Now the waiter's client knows the name is busy. The holder's
	// TryLock is its own SET; the statistics start after it.
	for range 3 {
		l, got := waitBehind(t, c, holder, waiter, name, func() { resetStats(t, n) })
		if k := calls(t, n, "set"); k != 0 {
			t.Fatalf("the waiter, which waited for %q a moment ago, made a plain first attempt (%d SET), want its first attempt in line", name, k)
		}
		handOver(t, l, got).Unlock(t.Context())
	}
	// Free, nobody in line: its attempt in line takes the lock at once.
	w, err := waiter.Lock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := redis.Int(n.Do("HLEN", redlock.LineKey(name))); err != nil || line != 0 {
		t.Fatalf("a Lock that found the lock free left %d entries in its line (%v), want none", line, err)
	}
	w.Unlock(t.Context())
}

// L9, L11: a Lock call that joins the line at once on a busy name, behind
// a waiter of its own client, still makes its first attempt (a plain one,
// as before it joined): with WithTries(1) it ends refused by the held key,
// its error and its EventLock agree on the attempt and the nodes, and an
// ended context is wrapped. Found by review: it returned having sent
// nothing, with an error that read as nodes failing.
func TestLockBehindOwnWaiterAttemptsFirst(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-behind-own"
	var mu sync.Mutex
	var locks []redlock.Event
	obs := redlock.ObserverFunc(func(e redlock.Event) {
		if e.Kind == redlock.EventLock && e.Name == name {
			mu.Lock()
			locks = append(locks, e)
			mu.Unlock()
		}
	})
	// Node timeouts of seconds: no request fails on a loaded machine.
	holder := newClient(t, c, redlock.WithNodeTimeout(5*time.Second))
	cl := newClient(t, c, redlock.WithObserver(obs), redlock.WithNodeTimeout(5*time.Second))
	l, err := holder.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	heldEverywhere(t, c, name)
	defer l.Unlock(context.Background())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := waitForLock(ctx, cl, name)
	inLine(t, c, name, 1)

	_, err = cl.Lock(t.Context(), name, redlock.WithTries(1))
	var qe *redlock.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("err %v, want a *QuorumError", err)
	}
	t.Logf("error: %v", err)
	mu.Lock()
	ev := locks[len(locks)-1]
	mu.Unlock()
	t.Logf("EventLock: attempts %d nodes %d quorum %d granted %d refused %d failed %d", ev.Attempts, ev.Nodes, ev.Quorum, ev.Granted, ev.Refused, ev.Failed)
	if ev.Attempts != qe.Attempts {
		t.Errorf("EventLock.Attempts %d, the error's Attempts %d: they disagree", ev.Attempts, qe.Attempts)
	}
	if ev.Nodes == 0 || ev.Quorum == 0 {
		t.Errorf("EventLock has Nodes %d Quorum %d: no round figures", ev.Nodes, ev.Quorum)
	}
	if qe.Refused == 0 && qe.Failed == 0 {
		t.Errorf("error says %q: no node refused or failed, the reason reads as a quorum failure although no request was sent", qe.Reason())
	}
	// With the context already ended, the error should wrap it (as an
	// attempt with an ended context does).
	done, stop := context.WithCancel(t.Context())
	stop()
	_, err = cl.Lock(done, name, redlock.WithTries(1))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with an ended context behind its own waiter: %v, does not wrap context.Canceled", err)
	}
	cancel()
	<-first
}

// L4, L12: a waiter served by every node sends no leave, also when a
// node's hand-over reaches it after the lock was decided, and a lock
// released within claimAfter sends no claim: its release takes the waiter
// out of the line. Node 2 is 20 ms away from the waiter (a proxy, slowed
// once the waiter is in line), so the waiter decides on nodes 0 and 1
// before node 2's announcement arrives; the nodes then ran six scripts,
// the holder's release that handed the lock over and the waiter's
// release on each, and no leave or claim.
func TestLateGrantNeedsNoLeave(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-late-grant"
	p, far := behindProxy(t, c, 2)
	// Node timeouts of seconds: nothing fails on a loaded machine, and the
	// waiter makes no attempt to keep its place while the test runs (L3).
	holder := newClient(t, c, redlock.WithNodeTimeout(5*time.Second))
	waiter := newClientOn(t, newPools(t, far), redlock.WithNodeTimeout(5*time.Second))
	waitedBefore(t, c, holder, waiter, name)
	l, got := waitBehind(t, c, holder, waiter, name, nil)
	p.SetDelay(20 * time.Millisecond)
	resetStats(t, c.Nodes()...)
	w := handOver(t, l, got)
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A leave or a claim would come before the waiter's release on each
	// node: wait until the key is gone everywhere, then for any script
	// still on its way.
	deadline := time.Now().Add(10 * time.Second)
	for {
		gone := true
		for _, n := range c.Nodes() {
			gone = gone && keyOn(t, n, name) == ""
		}
		total := 0
		for _, n := range c.Nodes() {
			total += calls(t, n, "evalsha")
		}
		if total > 6 {
			t.Fatalf("the nodes ran %d scripts, want 6: the two releases on each, no leave, no claim", total)
		}
		if gone && total == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the nodes ran %d scripts, want 6, and the key is gone everywhere: %v", total, gone)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A8, L12: the undo of an attempt that a slow node answers only after the
// waiter gave up does not put the waiter back in line there. The node
// granted that attempt, refused the waiter's later ones (its key held the
// earlier attempt's value), and got the leave, which passes on only the
// last attempt's value; the undo came after, found its value, put the
// finished waiter back in line, first, and reserved the key for it: the
// node waited for nobody for a reservation's time (found by a review).
// Once the leave is sent, a late undo is a release with the waiter's id
// instead: it takes the waiter out of the line, and passes the key on.
func TestLateUndoAfterGivingUpLeavesNoTrace(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "line-late-undo-gave-up"
	p, far := behindProxy(t, c, 2)
	// Held elsewhere on nodes 0 and 1; node 2 free, and half a second away
	// (the proxy delays each chunk it reads in turn: what the waiter sends
	// within its first 100ms reaches node 2 within about a second).
	for _, n := range c.Nodes()[:2] {
		if _, err := n.Do("SET", redlock.LockKey(name), "held-elsewhere", "PX", 60000); err != nil {
			t.Fatal(err)
		}
	}
	// A node timeout of 5s: no request fails, and a reservation, or an
	// entry, lasts 20s.
	waiter := newClientOn(t, newPools(t, far), redlock.WithNodeTimeout(5*time.Second), redlock.WithTries(1<<20),
		redlock.WithRetryDelay(func(int) time.Duration { return 5 * time.Millisecond }))
	if l, err := waiter.TryLock(t.Context(), name+":warm-up"); err == nil { // the connections open
		l.Unlock(t.Context())
	}
	// Node 2's scripts as it runs them: the test waits for the leave.
	slow := c.Nodes()[2]
	mon, err := redis.Dial("tcp", slow.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if _, err := mon.Do("MONITOR"); err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 1024)
	go func() {
		defer close(ran)
		for {
			line, err := redis.String(mon.Receive())
			if err != nil {
				return
			}
			if strings.Contains(line, "EVALSHA") {
				ran <- line
			}
		}
	}()
	// Its attempt in line granted by node 2 is decided (refused by 0 and
	// 1) long before node 2 answers; so are its next ones, which node 2
	// refuses; it gives up, and its leave is sent before node 2 answers
	// the first of them, whose undo is sent then.
	p.SetDelay(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := waiter.Lock(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock: %v, want it to give up at its deadline", err)
	}
	// Once node 2 ran the leave, the late undo comes (or came first): the
	// key, which holds the granted attempt till then, must end free, and
	// the line empty, well before a reservation or an entry (20s) would.
	timeout := time.After(10 * time.Second)
	for left := false; !left; {
		select {
		case line, ok := <-ran:
			if !ok {
				t.Fatal("MONITOR ended")
			}
			left = strings.Contains(line, `"leave"`)
		case <-timeout:
			t.Fatal("node 2 ran no leave of the waiter in 10s")
		}
	}
	waitUntil(t, 10*time.Second, "node 2's key free and its line empty: the waiter gave up", func() bool {
		line, err := redis.Int(slow.Do("HLEN", redlock.LineKey(name)))
		return err == nil && line == 0 && keyOn(t, slow, name) == ""
	})
}

// behindProxy puts node i of c behind a proxy (closed when the test ends)
// and returns it, and c's addresses with the proxy's in place of node i's.
func behindProxy(t *testing.T, c *redistest.Cluster, i int) (*chaos.Proxy, []string) {
	t.Helper()
	addrs := slices.Clone(c.Addrs())
	p, err := chaos.NewProxy(addrs[i])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	addrs[i] = p.Addr()
	return p, addrs
}

// handedOverOnOneNode has a holder take name on a node of its own, a
// waiter (another client) wait for it in line and be handed it over by
// the holder's release (L12); before, when not nil, runs right before that
// release. Node timeouts of 10s: the waiter makes no attempt to keep its
// place meanwhile (L3), no request fails on a loaded machine, and the
// claim would wait 2s. It returns the node, the waiter's client and its
// lock.
func handedOverOnOneNode(t *testing.T, name string, before func(*redistest.Node)) (*redistest.Node, *redlock.Client, *redlock.Lock) {
	t.Helper()
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	opts := []redlock.Option{redlock.WithNodeTimeout(10 * time.Second), redlock.WithTTL(time.Minute)}
	holder, waiter := newClient(t, c, opts...), newClient(t, c, opts...)
	waitedBefore(t, c, holder, waiter, name)
	l, got := waitBehind(t, c, holder, waiter, name, nil)
	if before != nil {
		before(n)
	}
	return n, waiter, handOver(t, l, got)
}
