package redlock_test

import (
	"context"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// waitForPermit runs Acquire in the background and reports on the channel
// (nil when Acquire failed).
func waitForPermit(ctx context.Context, s *redlock.Semaphore) <-chan *redlock.Lock {
	return inBackground(func() (*redlock.Lock, error) { return s.Acquire(ctx) })
}

// S4, S3: waiters of separate clients (as separate service instances) get
// the permits in the order they arrived: each permit given back by Unlock
// goes to the first waiter, and nobody behind it is served first.
func TestSemaphoreResignedPermitGoesToFirstWaiter(t *testing.T) {
	c := redistest.New(t, 5)
	const name, permits, waiters = "sem-fair", 2, 5
	opts := []redlock.Option{redlock.WithTries(1000)}
	holder := newSemaphore(t, c, name, permits, opts...)
	held := holdAll(t, holder, permits)
	got := make([]<-chan *redlock.Lock, waiters)
	for i := range waiters {
		got[i] = waitForPermit(t.Context(), newSemaphore(t, c, name, permits, opts...))
		inLineAt(t, c, redlock.SemaphoreLineKey(name), i+1) // in line on every node before the next arrives
	}
	for i := range waiters {
		if err := held[0].Unlock(t.Context()); err != nil {
			t.Fatalf("giving back a permit before waiter %d's turn: %v", i, err)
		}
		held = held[1:]
		var w *redlock.Lock
		select {
		case w = <-got[i]:
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d (arrived %d-th) not served 10s after a permit was given back", i, i+1)
		}
		if w == nil {
			t.Fatalf("waiter %d: Acquire failed", i)
		}
		for j := i + 1; j < waiters; j++ { // nobody behind it was served first
			select {
			case <-got[j]:
				t.Fatalf("waiter %d served before waiter %d, who arrived first", j, i)
			default:
			}
		}
		held = append(held, w)
	}
	unlockAll(t, held...)
	inLineAt(t, c, redlock.SemaphoreLineKey(name), 0) // everyone left the line
}

// S3: a holder that dies (its client gone, no Unlock) keeps its permit
// until its TTL runs out on the nodes, not longer: a waiter gets it then,
// never before the dead holder's Until().
func TestSemaphoreDeadHolderPermitComesBack(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "sem-dead"
	dead := newSemaphore(t, c, name, 1)
	l, err := dead.TryAcquire(t.Context(), redlock.WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	until := l.Until() // the holder then dies: no Unlock, no extension
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	next, err := newSemaphore(t, c, name, 1).Acquire(ctx, redlock.WithTries(1_000_000))
	if err != nil {
		t.Fatalf("the dead holder's permit never came back: %v", err)
	}
	if at := time.Now(); at.Before(until) {
		t.Fatalf("permit taken %v before the dead holder's Until()", until.Sub(at))
	}
	if err := next.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// S5, F4: with fencing, the permits' tokens strictly increase from one
// acquisition to the next, across slots and clients, also when the nodes'
// counters disagree (the write-back of F3 runs on the won slot's key).
func TestSemaphoreFencingTokensIncreaseAcrossSlots(t *testing.T) {
	c := redistest.New(t, 5)
	const name, permits = "sem-fence", 3
	for i, v := range []int{50, 7} { // counters that disagree: the write-back is needed
		if _, err := c.Nodes()[i].Do("SET", redlock.SemaphoreCounterKey(name), v); err != nil {
			t.Fatal(err)
		}
	}
	sems := []*redlock.Semaphore{
		newSemaphore(t, c, name, permits, redlock.WithFencing()),
		newSemaphore(t, c, name, permits, redlock.WithFencing()),
	}
	var last uint64
	var held []*redlock.Lock
	for i := range 20 {
		if len(held) == permits || (len(held) > 0 && i%3 == 0) {
			if err := held[0].Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
			held = held[1:]
		}
		l, err := sems[i%2].TryAcquire(t.Context())
		if err != nil {
			t.Fatalf("acquisition %d: %v", i, err)
		}
		if l.Token() <= last {
			t.Fatalf("acquisition %d: token %d after %d: tokens must strictly increase", i, l.Token(), last)
		}
		last = l.Token()
		held = append(held, l)
	}
	if last <= 50 {
		t.Fatalf("last token %d: not above the highest counter, 50", last)
	}
	unlockAll(t, held...)
}

// S1: a semaphore and the lock of the same name share no key: holding the
// lock takes no permit, and holding every permit leaves the lock free.
func TestSemaphoreApartFromTheLockOfItsName(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "sem-apart"
	cl := newClient(t, c)
	lock, err := cl.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.Semaphore(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	permit, err := s.TryAcquire(t.Context())
	if err != nil {
		t.Fatalf("TryAcquire while the lock of the same name is held: %v", err)
	}
	unlockAll(t, permit, lock)
}

// S2, A8: grants split between slots are no permit and are given back. With
// N = 3 and K = 2, node 0 can grant only slot 1, node 1 only slot 0, and
// node 2 neither: the attempt fails and both grants are undone; with node 2
// freed, node 2 joins node 1 on slot 0 and node 0's grant of slot 1 is
// undone.
func TestSemaphoreSplitGrantsAreUndone(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "sem-split"
	n := c.Nodes()
	slot := func(i int) string { return redlock.SemaphoreSlotKey(name, i) }
	set := func(node, i int, v string) {
		if _, err := n[node].Do("SET", slot(i), v, "PX", 60000); err != nil {
			t.Fatal(err)
		}
	}
	set(0, 0, "other-a")
	set(1, 1, "other-b")
	set(2, 0, "other-c")
	set(2, 1, "other-d")
	s := newSemaphore(t, c, name, 2)
	if _, err := s.TryAcquire(t.Context()); err == nil {
		t.Fatal("TryAcquire with grants split between slots succeeded")
	}
	// Undone: node 0's slot 1 and node 1's slot 0 are free again.
	free := func(node, i int) bool {
		_, err := redis.String(n[node].Do("GET", slot(i)))
		return err == redis.ErrNil
	}
	waitFor(t, "the split grants undone", func() bool { return free(0, 1) && free(1, 0) })

	for _, i := range []int{0, 1} {
		if _, err := n[2].Do("DEL", slot(i)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.TryAcquire(t.Context())
	if err != nil {
		t.Fatalf("TryAcquire with slot 0 free on nodes 1 and 2: %v", err)
	}
	waitFor(t, "node 0's grant of slot 1 undone", func() bool { return free(0, 1) })
	if free(1, 0) || free(2, 0) {
		t.Fatal("the permit's slot 0 is not held on nodes 1 and 2")
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slot 0 given back", func() bool { return free(1, 0) && free(2, 0) })
}

// waitFor polls cond, failing the test if it does not hold within 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
