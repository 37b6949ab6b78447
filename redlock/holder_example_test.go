package redlock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Who holds a lock: every acquisition records its host, process id, time
// and label (WithHolder) in the lock's value; Holder reads them from every
// node, never the value's secret, and names the holder a quorum agrees on.
func ExampleClient_Holder() {
	ctx := context.Background()
	var pools []pool.Pool
	for _, addr := range exampleAddrs() { // your independent masters
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	// A second is plenty for a node to answer on a fresh connection.
	client, err := redlock.New(pools, redlock.WithHolder("nightly-report"), redlock.WithNodeTimeout(time.Second))
	if err != nil {
		panic(err)
	}
	defer client.Close()

	lock, err := client.Lock(ctx, "report-holder")
	if err != nil {
		fmt.Println("not acquired:", err)
		return
	}
	defer lock.Unlock(ctx)

	st, err := client.Holder(ctx, "report-holder")
	if err != nil {
		fmt.Println("holder:", err)
		return
	}
	fmt.Printf("%s, by %q; %d of %d nodes answered\n", st.Verdict, st.Holder.Label, st.Answered(), len(st.Nodes))
	// Output: held by a quorum, by "nightly-report"; 5 of 5 nodes answered
}
