package redlock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/quorumlock/quorumlock/redlock"
)

// runScheduler stands for the work only the leader may do; it stops when
// ctx ends: the leadership may be lost.
func runScheduler(ctx context.Context, term uint64) error {
	_ = term // pass it with every write: the resource refuses older terms (F5)
	return nil
}

// The README's "Leader election": one instance leads, the others wait in
// line; anyone can ask who leads, or follow the changes.
func ExampleElection_Campaign() {
	ctx := context.Background()
	client, closeAll := readmeClient()
	defer closeAll()

	election, err := client.Election("scheduler")
	if err != nil {
		panic(err) // an empty or too long name
	}
	changes, stop := context.WithCancel(ctx)
	defer stop()
	updates := election.Observe(changes) // the current leader, then each change

	// Blocks until this instance leads (or ctx ends: the error wraps ctx.Err()).
	leadership, err := election.Campaign(ctx, "scheduler-1:8080")
	if err != nil {
		fmt.Println("not leading:", err)
		return
	}
	term := leadership.Token() // greater than every earlier leader's

	// Lead while the leadership holds: Done closes when it may be lost.
	work, cancel := context.WithCancel(ctx)
	go func() {
		<-leadership.Done()
		cancel()
	}()
	if err := runScheduler(work, term); err != nil {
		fmt.Println(err)
	}

	leader, err := election.Leader(ctx) // what a quorum of the nodes says
	switch {
	case errors.Is(err, redlock.ErrNoLeader):
		fmt.Println("no leader:", err)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("leader:", leader.Value, leader.Token == term)
	}
	for l := range updates {
		if l.Token == term {
			fmt.Println("observed:", l.Value)
			break
		}
	}

	// Resign: the next candidate in line takes over in about a round trip.
	if err := leadership.Unlock(ctx); err != nil {
		fmt.Println("resign:", err)
	}
	cancel()
	// Output:
	// leader: scheduler-1:8080 true
	// observed: scheduler-1:8080
}
