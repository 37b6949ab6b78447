package redlock_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Bad input from Redis: a lock key of another type (WRONGTYPE), a replica
// (READONLY), a node still loading (LOADING), a wrong or missing password.
// Each surfaces as a *NodeError on that node, with its address and Redis's
// words, and a five-node lock still works around it (A10).
func TestNodeFailuresFromRedis(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string
		// spoil puts node 0 of c in the bad state and returns the pool
		// options to reach it with.
		spoil func(t *testing.T, c *redistest.Cluster, name string) (addr string, opts []pool.Option)
	}{
		{"wrong type", "WRONGTYPE", func(t *testing.T, c *redistest.Cluster, name string) (string, []pool.Option) {
			if _, err := c.Nodes()[0].Do("LPUSH", redlock.LockKey(name), "x"); err != nil {
				t.Fatal(err)
			}
			return c.Nodes()[0].Addr(), nil
		}},
		{"replica", "READONLY", func(t *testing.T, c *redistest.Cluster, name string) (string, []pool.Option) {
			// A replica of a master that does not exist is read-only at once.
			if _, err := c.Nodes()[0].Do("REPLICAOF", "127.0.0.1", "1"); err != nil {
				t.Fatal(err)
			}
			return c.Nodes()[0].Addr(), nil
		}},
		{"loading", "LOADING", func(t *testing.T, c *redistest.Cluster, name string) (string, []pool.Option) {
			return loadingNode(t, c.Nodes()[0]), nil
		}},
		{"wrong password", "WRONGPASS", func(t *testing.T, c *redistest.Cluster, name string) (string, []pool.Option) {
			p := redistest.New(t, 1, redistest.WithPassword("right"))
			return p.Addrs()[0], []pool.Option{pool.WithPassword("wrong")}
		}},
		{"no password", "NOAUTH", func(t *testing.T, c *redistest.Cluster, name string) (string, []pool.Option) {
			p := redistest.New(t, 1, redistest.WithPassword("right"))
			return p.Addrs()[0], nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.New(t, 5, redistest.WithArgs("--enable-debug-command", "yes"))
			name := "node-failure-" + strings.ReplaceAll(tc.name, " ", "-")
			addr, opts := tc.spoil(t, c, name)
			bad := newPools(t, []string{addr}, opts...)[0]
			opt := redlock.WithNodeTimeout(time.Second)

			one := newClientOn(t, []pool.Pool{bad}, opt)
			_, err := one.TryLock(t.Context(), name)
			var ne *redlock.NodeError
			if !errors.As(err, &ne) || ne.Addr != addr || !strings.Contains(ne.Error(), tc.want) {
				t.Fatalf("TryLock on the bad node = %v; want a *NodeError for %s saying %s", err, addr, tc.want)
			}
			if !errors.Is(err, redlock.ErrNotAcquired) {
				t.Fatalf("TryLock on the bad node = %v, want ErrNotAcquired", err)
			}

			five := newClientOn(t, append([]pool.Pool{bad}, newPools(t, c.Addrs()[1:])...), opt)
			l, err := five.TryLock(t.Context(), name)
			if err != nil {
				t.Fatalf("TryLock with 4 healthy nodes of 5 = %v, want the lock", err)
			}
			if err := l.Extend(t.Context(), 5*time.Second); err != nil {
				t.Fatalf("Extend with 4 healthy nodes of 5 = %v", err)
			}
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatalf("Unlock with 4 healthy nodes of 5 = %v", err)
			}
		})
	}
}

// loadingNode replaces n by a redis-server that stays in the LOADING state
// for a long while (it reads a 20,000-key dump with a delay per key), and
// returns its address, the same as n's.
func loadingNode(t *testing.T, n *redistest.Node) string {
	t.Helper()
	if _, err := n.Do("DEBUG", "POPULATE", 20000); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Do("SAVE"); err != nil {
		t.Fatal(err)
	}
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	port := n.Addr()[strings.LastIndex(n.Addr(), ":")+1:]
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", n.Dir(), "--save", "",
		"--key-load-delay", "500", "--loading-process-events-interval-bytes", "1024")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := newPools(t, []string{n.Addr()})[0]
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := pool.Do(ctx, p, "PING")
		cancel()
		if err != nil && strings.Contains(err.Error(), "LOADING") {
			return n.Addr()
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s never answered LOADING (last: %v)", n.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
