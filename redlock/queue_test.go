package redlock

import (
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

// L4, L9: a client's waiter that gives up while it is not first is never
// put in line by the leave of the waiter before it: once it has given up,
// no entry of it is left on the nodes. (Before, the first waiter's leave
// named it as successor if it had not left the client's queue yet.)
func TestSuccessorThatGaveUpIsNotPutInLine(t *testing.T) {
	c := redistest.New(t, 3)
	var pools []pool.Pool
	for _, a := range c.Addrs() {
		p := pool.New(a)
		t.Cleanup(func() { p.Close() })
		pools = append(pools, p)
	}
	cl := newTestClient(t, pools)
	const name = "queue-gave-up"
	first, behind := cl.join(name), cl.join(name)
	defer first.stop()
	defer behind.stop()
	cl.gaveUp(behind, &cl.cfg, nil) // gives up; its deferred stop has not run yet
	cl.leave(name, first, cl.cfg.nodeTimeout, nil)
	// A request written after the leave on every node's connection: once
	// every node holds its key, every node has run the leave.
	b, err := cl.TryLock(t.Context(), "queue-barrier")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Unlock(t.Context())
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.Nodes() {
		for {
			if v, _ := redis.String(n.Do("GET", LockKey("queue-barrier"))); v != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the barrier key is not on %s after 10s", n.Addr())
			}
			time.Sleep(2 * time.Millisecond)
		}
		line, err := redis.StringMap(n.Do("HGETALL", LineKey(name)))
		if err != nil {
			t.Fatal(err)
		}
		if len(line) != 0 {
			t.Fatalf("line on %s = %v after the waiter behind gave up: want no entry", n.Addr(), line)
		}
	}
}
