package redlock_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/quorumlock/quorumlock/redlock"
)

// The README's "Observability": an observer of one's own (a count of the
// locks held and of node failures), and SlogObserver, on one client.
func ExampleWithObserver_readme() {
	ctx := context.Background()
	var held, nodeFailures atomic.Int64
	counter := redlock.ObserverFunc(func(e redlock.Event) {
		held.Add(int64(e.HeldDelta)) // +1 when a lock is taken, -1 when it ends
		if e.Kind == redlock.EventNodeFailure {
			nodeFailures.Add(1) // e.Node, e.Failure: "timeout", "connection", ...
		}
	})
	// At Info, only what goes wrong is logged: node failures, lost locks.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	client, closeAll := readmeClient(
		redlock.WithObserver(counter),
		redlock.WithObserver(redlock.SlogObserver(logger)),
	)
	defer closeAll()

	lock, err := client.TryLock(ctx, "report")
	if err != nil {
		fmt.Println("not acquired:", err)
		return
	}
	fmt.Println("held:", held.Load())
	lock.Unlock(ctx)
	fmt.Println("held:", held.Load())
	// Output:
	// held: 1
	// held: 0
}
