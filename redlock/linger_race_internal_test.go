package redlock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// ringsOn returns whether every node's subscriber rings bell on each of
// channels.
func ringsOn(c *Client, bell *wakeup, channels ...string) bool {
	for _, s := range c.wait.subs {
		s.mu.Lock()
		for _, ch := range channels {
			if _, ok := s.chans[ch][bell]; !ok {
				s.mu.Unlock()
				return false
			}
		}
		s.mu.Unlock()
	}
	return true
}

// L10: waiters that join a name while its linger ends (a linger of a
// microsecond: the timer fires as they come and go) always find the name's
// channels subscribed for them, and when the last leaves and the linger
// ends, nothing stays subscribed.
func TestLingerEndingAsWaitersJoin(t *testing.T) {
	c := redistest.New(t, 1)
	cl := newTestClient(t, testPools(t, c))
	cl.wait.mu.Lock()
	cl.wait.linger = time.Microsecond
	cl.wait.mu.Unlock()
	const name = "linger-race"
	all := LockKey(name) + releasedSuffix
	mine := all + ":" + cl.chanID
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				bell := newWakeup(cl.chanID+".X", len(cl.nodes))
				stop := cl.wait.wait(name, cl.chanID, bell)
				if !ringsOn(cl, bell, all, mine) {
					t.Error("a waiter that joined is not rung on the name's channels")
				}
				stop()
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for cl.wait.lingering() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the name still lingers 10s after a linger of 1µs")
		}
		time.Sleep(2 * time.Millisecond)
	}
	cl.wait.mu.Lock()
	groups := len(cl.wait.groups)
	cl.wait.mu.Unlock()
	if groups != 0 {
		t.Fatalf("%d groups after the linger ended, want 0", groups)
	}
	awaitSubscribers(t, c, all, 0)
	awaitSubscribers(t, c, mine, 0)
}

// L10, V6: an Election observer and the waiters of its lock share the
// lock's ':released' channel: the observer's stop leaves the waiters'
// subscription, and the end of the waiters' linger leaves the observer's.
func TestObserverAndWaitersShareTheReleaseChannel(t *testing.T) {
	c := redistest.New(t, 1)
	cl := newTestClient(t, testPools(t, c))
	cl.wait.mu.Lock()
	cl.wait.linger = time.Microsecond
	cl.wait.mu.Unlock()
	e, err := cl.Election("share")
	if err != nil {
		t.Fatal(err)
	}
	all := LockKey(e.lock) + releasedSuffix
	// The observer stops while a waiter waits.
	w := cl.join(e.lock)
	ctx, cancel := context.WithCancel(t.Context())
	obs := e.Observe(ctx)
	<-obs
	cancel()
	for range obs {
	}
	if !ringsOn(cl, w.bell, all) {
		t.Fatal("the observer's stop took the waiter off the release channel")
	}
	awaitSubscribers(t, c, all, 1)
	// The waiter leaves and its linger ends while an observer observes.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	obs = e.Observe(ctx)
	<-obs
	w.stop()
	deadline := time.Now().Add(10 * time.Second)
	for cl.wait.lingering() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the name still lingers 10s after a linger of 1µs")
		}
		time.Sleep(2 * time.Millisecond)
	}
	awaitSubscribers(t, c, all, 1)
	awaitSubscribers(t, c, all+":"+cl.chanID, 0)
}
