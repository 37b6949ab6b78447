package redlock_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// calls returns how many times node n ran cmd since its stats were reset
// (INFO commandstats).
func calls(t *testing.T, n *redistest.Node, cmd string) int {
	t.Helper()
	info, err := redis.String(n.Do("INFO", "commandstats"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			t.Fatalf("INFO commandstats: %q: %v", line, err)
		}
		return k
	}
	return 0
}

// resetStats zeroes the command statistics of nodes (INFO commandstats).
func resetStats(t *testing.T, nodes ...*redistest.Node) {
	t.Helper()
	for _, n := range nodes {
		if _, err := n.Do("CONFIG", "RESETSTAT"); err != nil {
			t.Fatalf("CONFIG RESETSTAT on %s: %v", n.Addr(), err)
		}
	}
}

// waitOnce makes waiter wait for name once: holder takes the lock, waiter's
// Lock call waits in line, holder releases, the waiter takes the lock and
// releases it.
func waitOnce(t *testing.T, c *redistest.Cluster, holder, waiter *redlock.Client, name string) {
	t.Helper()
	var l *redlock.Lock
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if l, err = holder.TryLock(t.Context(), name); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder could not take %q for 10s: %v", name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := waitForLock(t.Context(), waiter, name)
	inLine(t, c, name, 1)
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-got:
		if w == nil {
			t.Fatal("the waiter's Lock failed")
		}
		if err := w.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not served 10s after the release")
	}
	// Unlock returns at the quorum: the next TryLock of the test must not
	// find the last node still held (it failed once so under a CPU hog).
	freeEverywhere(t, c, name)
}

// L10: a client whose Lock calls wait for one name one after another
// subscribes to the name's channels once per node (one SUBSCRIBE for both),
// and unsubscribes nothing while they linger: before, each wait cost every
// node a SUBSCRIBE and an UNSUBSCRIBE per channel.
func TestRepeatedWaitsSubscribeOnce(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "linger-once"
	holder := newClient(t, c)
	waiter := newClient(t, c, redlock.WithTries(1<<20))
	// A linger longer than any gap between the waits on a loaded machine:
	// the default 10 s would be a timing target.
	redlock.SetLinger(waiter, time.Hour)
	resetStats(t, c.Nodes()...)
	for range 3 {
		waitOnce(t, c, holder, waiter, name)
	}
	for _, n := range c.Nodes() {
		if sub, unsub := calls(t, n, "subscribe"), calls(t, n, "unsubscribe"); sub != 1 || unsub != 0 {
			t.Fatalf("%s served %d SUBSCRIBE and %d UNSUBSCRIBE for 3 waits on one name, want 1 and 0", n.Addr(), sub, unsub)
		}
	}
	if k := redlock.Lingering(waiter); k != 1 {
		t.Fatalf("%d names linger after the waits, want 1", k)
	}
}

// numsub returns how many subscribers node n has on channel.
func numsub(t *testing.T, n *redistest.Node, channel string) int {
	t.Helper()
	v, err := redis.Values(n.Do("PUBSUB", "NUMSUB", channel))
	if err != nil || len(v) != 2 {
		t.Fatalf("PUBSUB NUMSUB %s on %s: %v %v", channel, n.Addr(), v, err)
	}
	k, _ := redis.Int(v[1], nil)
	return k
}

// unsubscribed waits until no node has a subscriber on name's channels.
func unsubscribed(t *testing.T, c *redistest.Cluster, name, cid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes() {
		for _, ch := range []string{redlock.LockKey(name) + ":released", redlock.LockKey(name) + ":released:" + cid} {
			for numsub(t, n, ch) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s still subscribed on %s after 10s", ch, n.Addr())
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

// L10: a name's subscriptions outlive the client's last waiter for it,
// until the linger ends, or the client closes.
func TestLingeringSubscriptionsEnd(t *testing.T) {
	c := redistest.New(t, 3)
	holder := newClient(t, c)

	t.Run("at close", func(t *testing.T) {
		const name = "linger-close"
		waiter := newClient(t, c, redlock.WithTries(1<<20))
		redlock.SetLinger(waiter, time.Hour)
		waitOnce(t, c, holder, waiter, name)
		if k := redlock.Lingering(waiter); k != 1 {
			t.Fatalf("%d names linger after the wait, want 1", k)
		}
		for _, n := range c.Nodes() { // subscribed still: the linger lasts an hour
			for _, ch := range []string{redlock.LockKey(name) + ":released", redlock.LockKey(name) + ":released:" + redlock.ChannelID(waiter)} {
				if k := numsub(t, n, ch); k != 1 {
					t.Fatalf("%d subscribers of %s on %s while it lingers, want 1", k, ch, n.Addr())
				}
			}
		}
		waiter.Close()
		unsubscribed(t, c, name, redlock.ChannelID(waiter))
	})

	t.Run("at the linger's end", func(t *testing.T) {
		const name = "linger-timeout"
		waiter := newClient(t, c, redlock.WithTries(1<<20))
		redlock.SetLinger(waiter, 50*time.Millisecond)
		waitOnce(t, c, holder, waiter, name)
		unsubscribed(t, c, name, redlock.ChannelID(waiter))
		deadline := time.Now().Add(10 * time.Second)
		for redlock.Lingering(waiter) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the name still lingers 10s after a linger of 50ms")
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// L10: a release that reserves for a waiter of an older client (an id
// without '.') announces it on that waiter's own channel, where such a
// client listens; a waiter of this version is announced on its client's
// channel, the id up to its first '.'. The payload is the full id.
func TestWaiterIdsOfEitherFormatAreAnnounced(t *testing.T) {
	c := redistest.New(t, 1)
	n := c.Nodes()[0]
	holder := newClient(t, c)
	for _, tc := range []struct{ id, channel string }{
		{"wOLDCLIENT", "wOLDCLIENT"},
		{"wNEWCLIENT.X1", "wNEWCLIENT"},
	} {
		name := "linger-format-" + tc.channel
		l, err := holder.TryLock(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := redlock.LineTake(n.Do, name, tc.id, 1, 10*time.Second, 0); err != nil || got != int64(0) {
			t.Fatalf("the waiter's attempt on the held key = %v, %v; want 0", got, err)
		}
		conn, err := redis.Dial("tcp", n.Addr(), redis.DialReadTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		sub := redis.PubSubConn{Conn: conn}
		if err := sub.PSubscribe(redlock.LockKey(name) + ":released*"); err != nil {
			t.Fatal(err)
		}
		if _, ok := sub.Receive().(redis.Subscription); !ok {
			t.Fatal("PSUBSCRIBE not confirmed")
		}
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		m, ok := sub.Receive().(redis.Message)
		conn.Close()
		if !ok {
			t.Fatalf("%s: no announcement of the reservation", tc.id)
		}
		if want := redlock.LockKey(name) + ":released:" + tc.channel; m.Channel != want || string(m.Data) != tc.id {
			t.Fatalf("reservation for %s announced %q on %s, want %q on %s", tc.id, m.Data, m.Channel, tc.id, want)
		}
	}
}
