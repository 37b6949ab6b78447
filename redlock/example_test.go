package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

func Example() {
	ctx := context.Background()
	var pools []pool.Pool
	for _, addr := range exampleAddrs() { // e.g. "redis-a:6379", ... five independent masters
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	client, err := redlock.New(pools, redlock.WithTTL(5*time.Second))
	if err != nil {
		panic(err)
	}
	defer client.Close() // before the pools: defers run last-in first-out

	lock, err := client.Lock(ctx, "nightly-report")
	if err != nil {
		fmt.Println("not acquired:", err)
		return
	}
	// Work only while time.Now() is before lock.Until().
	fmt.Println("held:", time.Now().Before(lock.Until()))

	// A second holder is refused while the first holds the lock.
	_, err = client.TryLock(ctx, "nightly-report")
	fmt.Println("second TryLock refused:", errors.Is(err, redlock.ErrNotAcquired))

	if err := lock.Unlock(ctx); err != nil {
		fmt.Println("unlock:", err)
	}
	// Output:
	// held: true
	// second TryLock refused: true
}

func ExampleQuorumError() {
	ctx := context.Background()
	var pools []pool.Pool
	for _, addr := range exampleAddrs() {
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	client, _ := redlock.New(pools)
	defer client.Close()
	held, _ := client.TryLock(ctx, "quorum-error-example")
	defer held.Unlock(ctx)

	_, err := client.TryLock(ctx, "quorum-error-example")
	var qe *redlock.QuorumError
	if errors.As(err, &qe) {
		fmt.Println(qe.Reason())
		fmt.Println("caller's context ended:", errors.Is(err, context.Canceled))
	}
	// Output:
	// held by another holder
	// caller's context ended: false
}

func ExampleClient_Do() {
	ctx := context.Background()
	var pools []pool.Pool
	for _, addr := range exampleAddrs() {
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	client, _ := redlock.New(pools, redlock.WithTTL(3*time.Second))
	defer client.Close()

	// The lock is extended while the job runs; ctx is cancelled, with
	// context.Cause(ctx) wrapping ErrLockLost, if the lock may be lost.
	err := client.Do(ctx, "migration", func(ctx context.Context) error {
		fmt.Println("running the job under the lock")
		return nil
	}, redlock.WithMaxHold(time.Hour))
	fmt.Println("done:", err)
	// Output:
	// running the job under the lock
	// done: <nil>
}
