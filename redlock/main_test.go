package redlock_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if exampleNodes != nil {
		exampleNodes.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// exampleNodes is the cluster the examples run on, started on first use.
var (
	exampleNodes *redistest.Cluster
	exampleOnce  sync.Once
)

// exampleAddrs returns the addresses of five local Redis nodes: in a real
// program, your independent Redis masters.
func exampleAddrs() []string {
	exampleOnce.Do(func() {
		c, err := redistest.Start(5)
		if err != nil {
			panic("examples need redis-server: " + err.Error())
		}
		exampleNodes = c
	})
	return exampleNodes.Addrs()
}

// newPools returns one pool per address, closed when the test ends.
func newPools(t testing.TB, addrs []string, opts ...pool.Option) []pool.Pool {
	t.Helper()
	pools := make([]pool.Pool, len(addrs))
	for i, a := range addrs {
		pools[i] = pool.New(a, opts...)
	}
	t.Cleanup(func() {
		for _, p := range pools {
			p.Close()
		}
	})
	return pools
}

// newClient starts nothing: it builds a client on the cluster's nodes.
func newClient(t testing.TB, c *redistest.Cluster, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	return newClientOn(t, newPools(t, c.Addrs()), opts...)
}

// newClientOn builds a client on pools and closes it when the test ends
// (before the pools: cleanups run last-in first-out).
func newClientOn(t testing.TB, pools []pool.Pool, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	cl, err := redlock.New(pools, opts...)
	if err != nil {
		t.Fatalf("redlock.New: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// keyOn returns the lock key's value on node n ("" when missing).
func keyOn(t testing.TB, n *redistest.Node, name string) string {
	t.Helper()
	v, err := redis.String(n.Do("GET", redlock.LockKey(name)))
	if err == redis.ErrNil {
		return ""
	}
	if err != nil {
		t.Fatalf("GET on %s: %v", n.Addr(), err)
	}
	return v
}

// holders counts the nodes where the lock key of name exists.
func holders(t testing.TB, c *redistest.Cluster, name string) int {
	t.Helper()
	k := 0
	for _, n := range c.Nodes() {
		if n.Running() && !n.Paused() && keyOn(t, n, name) != "" {
			k++
		}
	}
	return k
}

// countingPools returns pools on the cluster's nodes that count the
// requests written through them (and hide pool.Dialer: no subscription).
func countingPools(t testing.TB, c *redistest.Cluster) ([]pool.Pool, *atomic.Int64) {
	t.Helper()
	sends := new(atomic.Int64)
	var pools []pool.Pool
	for _, p := range newPools(t, c.Addrs()) {
		pools = append(pools, countingPool{p, sends})
	}
	return pools, sends
}

// countingPool counts the requests written to a node: it shows whether a
// call touched Redis at all.
type countingPool struct {
	pool.Pool
	sends *atomic.Int64
}

func (p countingPool) Get(ctx context.Context) (redis.Conn, error) {
	c, err := p.Pool.Get(ctx)
	if err != nil {
		return nil, err
	}
	return countingConn{c, p.sends}, nil
}

type countingConn struct {
	redis.Conn
	sends *atomic.Int64
}

func (c countingConn) Send(cmd string, args ...any) error {
	c.sends.Add(1)
	return c.Conn.Send(cmd, args...)
}

func (c countingConn) ReceiveWithTimeout(d time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, d)
}

func (c countingConn) DoWithTimeout(d time.Duration, cmd string, args ...any) (any, error) {
	return redis.DoWithTimeout(c.Conn, d, cmd, args...)
}

// unlockAll unlocks every lock of locks in turn, failing the test at the
// first error.
func unlockAll(t testing.TB, locks ...*redlock.Lock) {
	t.Helper()
	for _, l := range locks {
		if err := l.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// concurrently runs body(g) for g = 0..n-1, each on a goroutine of its own,
// all at once, and returns the errors they returned once all have returned.
func concurrently(n int, body func(g int) error) []error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			if err := body(g); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// newClusterClient starts five nodes and returns a client on them.
func newClusterClient(t testing.TB, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	return newClient(t, redistest.New(t, 5), opts...)
}

// settled waits until the key of name is on want nodes: a call returns at
// the quorum (A6) and the last nodes answer a moment later.
func settled(t testing.TB, c *redistest.Cluster, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for holders(t, c, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("key %q on %d nodes 3s later, want %d", name, holders(t, c, name), want)
		}
		time.Sleep(time.Millisecond)
	}
}
