package redlock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// A waiter in Lock is woken by the release: with a retry pause of 10s it
// still takes the lock right after Unlock, not 10s later.
func TestWaiterWokenOnRelease(t *testing.T) {
	c := redistest.New(t, 5)
	holder := newClient(t, c)
	waiter := newClient(t, c, redlock.WithRetryDelay(func(int) time.Duration { return 10 * time.Second }))
	l, err := holder.TryLock(t.Context(), "wake")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		if w, err := waiter.Lock(t.Context(), "wake"); err == nil {
			got <- time.Now()
			w.Unlock(t.Context())
		} else {
			t.Errorf("waiter: %v", err)
			got <- time.Time{}
		}
	}()
	subscribed(t, c, "wake") // the waiter has failed once and listens for the release
	released := time.Now()
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	at := <-got
	if at.IsZero() {
		return
	}
	if d := at.Sub(released); d > 5*time.Second {
		t.Fatalf("the waiter took the lock %v after the release: it waited out its 10s pause instead of being woken", d)
	} else {
		t.Logf("handoff after the release: %v", d)
	}
}

// Without a subscription (a pool that cannot dial one), waiters still get
// the lock by polling: the wake-up is an optimisation, never a dependency.
func TestWaiterFallsBackToPolling(t *testing.T) {
	c := redistest.New(t, 3)
	pools, _ := countingPools(t, c) // they hide pool.Dialer
	if _, ok := pools[0].(pool.Dialer); ok {
		t.Fatal("countingPool still offers pool.Dialer: the fallback is not tested")
	}
	cl := newClientOn(t, pools, redlock.WithRetryDelay(func(int) time.Duration { return 20 * time.Millisecond }))
	l, err := cl.TryLock(t.Context(), "poll")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		w, err := cl.Lock(t.Context(), "poll")
		if err == nil {
			w.Unlock(t.Context())
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	l.Unlock(t.Context())
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiter without subscriptions: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter without subscriptions never got the lock")
	}
}

// subscribed waits until every node has a subscriber on name's release
// channel: a waiter has failed once and listens.
func subscribed(t *testing.T, c *redistest.Cluster, name string) {
	t.Helper()
	channel := redlock.LockKey(name) + ":released"
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes() {
		for {
			v, err := redis.Values(n.Do("PUBSUB", "NUMSUB", channel))
			if err == nil && len(v) == 2 {
				if k, _ := redis.Int(v[1], nil); k > 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no subscriber on %s at %s after 10s: %v", channel, n.Addr(), err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// blockingDialer is a pool whose subscription dial never completes (a node
// that accepts connections and then says nothing): Dial waits for its
// context, and reports how that ended.
type blockingDialer struct {
	pool.Pool
	ended chan error
}

func (p blockingDialer) Dial(ctx context.Context) (redis.Conn, error) {
	<-ctx.Done()
	p.ended <- ctx.Err()
	return nil, ctx.Err()
}

// C2: Close stops a subscription dial in progress at once: it does not wait
// for the dial to time out.
func TestCloseStopsSubscriptionDial(t *testing.T) {
	c := redistest.New(t, 3)
	holder := newClient(t, c)
	l, err := holder.TryLock(t.Context(), "close-dial")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(t.Context())
	ended := make(chan error, 16)
	var pools []pool.Pool
	for _, p := range newPools(t, c.Addrs()) {
		pools = append(pools, blockingDialer{p, ended})
	}
	cl, err := redlock.New(pools)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	cl.Lock(ctx, "close-dial") // waits in line: the subscribers start dialing
	cancel()
	cl.Close()
	for range pools {
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("a subscription dial ended with %v when the client closed, want context.Canceled (Close waited for the dial)", err)
		}
	}
}
