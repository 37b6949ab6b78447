package pipe

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waiter collects one reply.
type waiter struct {
	ch chan result
}

type result struct {
	v   any
	err error
}

func (w waiter) Reply(_ int, v any, err error) { w.ch <- result{v, err} }

func do(n *Node, d time.Duration, cmd string, args ...any) (any, error) {
	w := waiter{make(chan result, 1)}
	n.Do(Request{Cmd: cmd, Args: args, Deadline: time.Now().Add(d), H: w})
	r := <-w.ch
	return r.v, r.err
}

func newNode(t *testing.T, addr string, scripts ...string) *Node {
	t.Helper()
	p := pool.New(addr)
	n := NewNode(p, scripts...)
	t.Cleanup(func() { n.Close(); p.Close() })
	return n
}

// Many concurrent callers share the connection; every reply reaches its
// caller, in order per node.
func TestConcurrentCallersAndOrder(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := redis.Int64(do(n, time.Second, "INCR", "k")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := redis.Int64(do(n, time.Second, "GET", "k")); v != 64*50 {
		t.Fatalf("k = %d, want %d", v, 64*50)
	}
	// Enqueued in order, run in order: SET then DEL, without waiting.
	w := waiter{make(chan result, 2)}
	dl := time.Now().Add(time.Second)
	n.Do(Request{Cmd: "SET", Args: []any{"o", "1"}, Deadline: dl})
	n.Do(Request{Cmd: "DEL", Args: []any{"o"}, Deadline: dl, H: w})
	if v, _ := redis.Int64((<-w.ch).v, nil); v != 1 {
		t.Fatalf("DEL after SET deleted %d keys, want 1", v)
	}
}

// A3: a frozen node fails requests at their deadline, kills the
// connection, and works again after it wakes.
func TestFrozenNodeFailsAtDeadline(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	if _, err := do(n, time.Second, "PING"); err != nil {
		t.Fatal(err)
	}
	c.Nodes()[0].Pause()
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := do(n, 100*time.Millisecond, "PING"); !errors.Is(err, ErrTimeout) {
				t.Errorf("PING to a frozen node = %v, want ErrTimeout", err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("requests with a 100ms deadline took %v", d)
	}
	c.Nodes()[0].Resume()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := do(n, 200*time.Millisecond, "PING"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("PING after resume: %v", err)
		}
	}
}

// A killed node fails requests at once; a restarted one answers again.
func TestKilledNodeFailsFastAndRecovers(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	do(n, time.Second, "PING")
	c.Nodes()[0].Kill()
	start := time.Now()
	if _, err := do(n, 2*time.Second, "PING"); err == nil {
		t.Fatal("PING to a killed node succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PING to a killed node took %v, want an immediate failure", d)
	}
	c.Nodes()[0].Start()
	if _, err := do(n, time.Second, "PING"); err != nil {
		// the first request may meet the old, dead connection
		if _, err := do(n, time.Second, "PING"); err != nil {
			t.Fatalf("PING after restart: %v", err)
		}
	}
}

// Scripts are loaded per connection; after SCRIPT FLUSH, one request fails
// with ErrNoScript (it did not run) and the connection reloads them.
func TestScriptsLoadedAndReloaded(t *testing.T) {
	c := redistest.New(t, 1)
	src := "return 42"
	s := redis.NewScript(0, src)
	n := newNode(t, c.Addrs()[0], src)
	if v, err := redis.Int64(do(n, time.Second, "EVALSHA", s.Hash(), 0)); err != nil || v != 42 {
		t.Fatalf("EVALSHA = %v, %v; want 42 (the script preloaded)", v, err)
	}
	c.Nodes()[0].Do("SCRIPT", "FLUSH")
	if _, err := do(n, time.Second, "EVALSHA", s.Hash(), 0); !errors.Is(err, ErrNoScript) {
		t.Fatalf("EVALSHA after SCRIPT FLUSH = %v, want ErrNoScript", err)
	}
	if v, err := redis.Int64(do(n, time.Second, "EVALSHA", s.Hash(), 0)); err != nil || v != 42 {
		t.Fatalf("EVALSHA after the reload = %v, %v; want 42", v, err)
	}
}

func TestClose(t *testing.T) {
	c := redistest.New(t, 1)
	p := pool.New(c.Addrs()[0])
	defer p.Close()
	n := NewNode(p)
	do(n, time.Second, "PING")
	n.Close()
	if _, err := do(n, time.Second, "PING"); !errors.Is(err, ErrClosed) {
		t.Fatalf("PING after Close = %v, want ErrClosed", err)
	}
}

// A8: a request nobody waits for is written even when the writer reaches
// it late; its deadline counts from the write.
func TestFireAndForgetIsNeverDroppedUnsent(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	n.mu.Lock() // hold the writer back past the request's timeout
	n.queue = append(n.queue, Request{Cmd: "SET", Args: []any{"late", "1"}, Timeout: 20 * time.Millisecond})
	n.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if v, err := redis.String(do(n, time.Second, "GET", "late")); err != nil || v != "1" {
		t.Fatalf("GET late = %q, %v; want the SET written although the writer came late", v, err)
	}
}
