package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// The examples of this file are the complete versions of the README's Go
// fragments: internal/doccheck checks that each fragment's lines appear in
// the example it names, and go test runs the examples.

// readmeClient returns a client on five local nodes (in a real program,
// your independent Redis masters) and the function that closes it and its
// pools.
func readmeClient(opts ...redlock.Option) (*redlock.Client, func()) {
	var pools []pool.Pool
	for _, addr := range exampleAddrs() {
		pools = append(pools, pool.New(addr))
	}
	client, err := redlock.New(pools, opts...)
	if err != nil {
		panic(err)
	}
	return client, func() {
		client.Close() // before the pools
		for _, p := range pools {
			p.Close()
		}
	}
}

// migrate stands for a long job that must not run twice at once.
func migrate(ctx context.Context) error {
	select {
	case <-ctx.Done(): // the lock may be lost: stop touching the resource
		return context.Cause(ctx)
	default:
		return nil
	}
}

// The README's "Holding a lock while a job runs".
func ExampleClient_Do_readme() {
	ctx := context.Background()
	client, closeAll := readmeClient(redlock.WithTTL(3 * time.Second))
	defer closeAll()

	err := client.Do(ctx, "migration", func(ctx context.Context) error {
		// The lock is extended about every TTL/3 while this runs. If it may be
		// lost, ctx is cancelled and context.Cause(ctx) wraps redlock.ErrLockLost.
		return migrate(ctx)
	}, redlock.WithMaxHold(time.Hour)) // never hold it longer than an hour
	switch {
	case errors.Is(err, redlock.ErrNotAcquired):
		fmt.Println("not started:", err) // held elsewhere, too many nodes failing, or ctx ended
	case errors.Is(err, redlock.ErrLockLost):
		fmt.Println("cut short, the lock could not be kept:", err)
	case err != nil:
		fmt.Println("the job failed:", err)
	default:
		fmt.Println("migrated")
	}
	// Output: migrated
}
