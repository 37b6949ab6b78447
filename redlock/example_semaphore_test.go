package redlock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/quorumlock/quorumlock/redlock"
)

// At most two holders at once: a third is refused until one gives its
// permit back (ALGORITHM.md S1). The README's Semaphores section shows the
// lines of this example.
func ExampleClient_Semaphore() {
	ctx := context.Background()
	client, closeAll := readmeClient()
	defer closeAll()

	// At most two exports at once, across every instance of the service.
	sem, err := client.Semaphore("exports", 2)
	if err != nil {
		panic(err) // ErrInvalidOption: permits < 1 or > 1024, or a bad name
	}
	first, err := sem.Acquire(ctx, redlock.WithFencing()) // waits in line, like Lock
	if err != nil {
		fmt.Println("no permit:", err)
		return
	}
	second, err := sem.TryAcquire(ctx, redlock.WithFencing()) // one attempt
	if err != nil {
		fmt.Println("no permit:", err)
		return
	}
	_, err = sem.TryAcquire(ctx)
	fmt.Println("third refused:", errors.Is(err, redlock.ErrNotAcquired))
	fmt.Println("tokens increase:", second.Token() > first.Token())

	// A permit is a *Lock: Until, Done, Err, Extend; Unlock gives it back,
	// to the first waiter in line if any.
	first.Unlock(ctx)
	third, err := sem.TryAcquire(ctx)
	fmt.Println("after a permit came back:", err == nil)
	second.Unlock(ctx)
	third.Unlock(ctx)
	// Output:
	// third refused: true
	// tokens increase: true
	// after a permit came back: true
}
