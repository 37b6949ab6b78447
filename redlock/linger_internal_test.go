package redlock

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

// testPools returns a pool per node of c, closed when the test ends.
func testPools(t *testing.T, c *redistest.Cluster) []pool.Pool {
	var pools []pool.Pool
	for _, a := range c.Addrs() {
		p := pool.New(a)
		t.Cleanup(func() { p.Close() })
		pools = append(pools, p)
	}
	return pools
}

// subscribers returns how many subscribers node n has on channel.
func subscribers(t *testing.T, n *redistest.Node, channel string) int {
	t.Helper()
	v, err := redis.Values(n.Do("PUBSUB", "NUMSUB", channel))
	if err != nil || len(v) != 2 {
		t.Fatalf("PUBSUB NUMSUB %s: %v %v", channel, v, err)
	}
	k, _ := redis.Int(v[1], nil)
	return k
}

// awaitSubscribers waits until every node has want subscribers on channel.
func awaitSubscribers(t *testing.T, c *redistest.Cluster, channel string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes() {
		for subscribers(t, n, channel) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d subscribers of %s on %s after 10s, want %d", subscribers(t, n, channel), channel, n.Addr(), want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// L10, L2: a reservation for waiter X, announced on X's client's channel,
// counts for X alone: the client's other waiter Y of the same name, on the
// same channel, does not count it (its bell does not ring for it), and an
// announcement for an id no longer waiting counts for nobody.
func TestReservationRingsOnlyTheWaiterNamed(t *testing.T) {
	c := redistest.New(t, 3)
	cl := newTestClient(t, testPools(t, c))
	const name = "linger-route"
	x, y := cl.join(name), cl.join(name)
	defer x.stop()
	defer y.stop()
	channel := LockKey(name) + releasedSuffix + ":" + cl.chanID
	awaitSubscribers(t, c, channel, 1)
	for _, n := range c.Nodes() {
		// The one for a waiter gone first: when X's has been seen on a
		// node, so has this one.
		for _, id := range []string{cl.chanID + ".GONE", x.id} {
			if _, err := n.Do("PUBLISH", channel, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := func(b *wakeup) []bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.Clone(b.seen)
	}
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(seen(x.bell), false) {
		if time.Now().After(deadline) {
			t.Fatalf("X counted the reservations of nodes %v 10s after they were announced, want all", seen(x.bell))
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case <-x.bell.ch:
	default:
		t.Fatal("X's bell did not ring for a quorum of reservations for it")
	}
	if s := seen(y.bell); slices.Contains(s, true) {
		t.Fatalf("Y counted reservations for X (nodes %v)", s)
	}
}

// L10: at most maxLingering names stay subscribed for nobody; past it, the
// one that has lingered longest is unsubscribed first; Close unsubscribes
// the rest.
func TestLingeringNamesAreBounded(t *testing.T) {
	c := redistest.New(t, 1)
	cl := newTestClient(t, testPools(t, c))
	const extra = 4
	names := make([]string, maxLingering+extra)
	for i := range names {
		names[i] = "linger-bound-" + strconv.Itoa(i)
		w := cl.join(names[i])
		w.stop()
	}
	if k := cl.wait.lingering(); k != maxLingering {
		t.Fatalf("%d names linger, want the bound %d", k, maxLingering)
	}
	channel := func(name string) string { return LockKey(name) + releasedSuffix }
	for i, name := range names {
		want := 1
		if i < extra {
			want = 0 // the oldest: evicted
		}
		awaitSubscribers(t, c, channel(name), want)
		awaitSubscribers(t, c, channel(name)+":"+cl.chanID, want)
	}
	cl.Close()
	for _, name := range names {
		awaitSubscribers(t, c, channel(name), 0)
	}
}

// L10: the bound counts channels too: a semaphore's name has one per
// permit, so two semaphores of 600 permits (over maxLingeringChannels
// together) leave only the later one lingering.
func TestLingeringChannelsAreBounded(t *testing.T) {
	c := redistest.New(t, 1)
	cl := newTestClient(t, testPools(t, c))
	var sems []*Semaphore
	for i := range 2 {
		s, err := cl.Semaphore("linger-sem-"+strconv.Itoa(i), 600)
		if err != nil {
			t.Fatal(err)
		}
		sems = append(sems, s)
		w := (&acquisition{s: s, prefer: -1}).join()
		w.stop()
	}
	if k := cl.wait.lingering(); k != 1 {
		t.Fatalf("%d names linger, want 1: two of 600 channels each are over the bound of %d channels", k, maxLingeringChannels)
	}
	for i, s := range sems {
		awaitSubscribers(t, c, s.chans[0], i) // the first evicted, the second lingers
	}
}

// L11: recent builds, without allocating, the key of the group that wait
// (listen) makes for a name and a client channel; the two must agree, or
// L11 would silently never apply.
func TestRecentFindsTheGroupWaitMade(t *testing.T) {
	w := newWaiters(nil)
	defer w.close()
	for _, name := range []string{"a", "job:{x}", ""} {
		if w.recent(name, "wC") {
			t.Fatalf("recent(%q) before anyone waited", name)
		}
		stop := w.wait(name, "wC", newWakeup("wC.1", 1))
		if !w.recent(name, "wC") {
			t.Fatalf("recent(%q) = false while a waiter listens", name)
		}
		if w.recent(name, "wD") {
			t.Fatalf("recent(%q) for another client's channel", name)
		}
		stop()
	}
}
