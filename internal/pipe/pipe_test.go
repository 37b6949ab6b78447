package pipe

import (
	"errors"
	"fmt"
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

// ordered records the replies in the order the handlers were called.
type ordered struct {
	mu  sync.Mutex
	got []any
	wg  sync.WaitGroup // Add before a Do
}

func (o *ordered) Reply(node int, v any, err error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	o.mu.Lock()
	o.got = append(o.got, node, v, err)
	o.mu.Unlock()
	if node != 1 {
		o.wg.Done()
	}
}

func call(n *Node, d time.Duration, cmd string, args ...any) (any, error) {
	w := waiter{make(chan result, 1)}
	n.Call(Request{Cmd: cmd, Args: args, Deadline: time.Now().Add(d), H: w})
	r := <-w.ch
	return r.v, r.err
}

// A Call on an idle connection reads its own reply: its handler has run
// when Call returns. Calls and Dos of many callers mixed on one connection
// each get their own reply.
func TestCallReadsItsOwnReplyInOrder(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	if _, err := do(n, time.Second, "PING"); err != nil {
		t.Fatal(err)
	}
	// The PING's reply can arrive before its writer gave the write token
	// back; Call then goes to the writer, like Do. Wait for the token.
	idle(t, n)
	w := waiter{make(chan result, 1)}
	n.Call(Request{Cmd: "ECHO", Args: []any{"inline"}, Deadline: time.Now().Add(time.Second), H: w})
	select {
	case r := <-w.ch:
		if v, err := redis.String(r.v, r.err); err != nil || v != "inline" {
			t.Fatalf("ECHO inline = %q, %v", v, err)
		}
	default:
		t.Fatal("Call on an idle connection returned before its reply was handled")
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				f := do
				if (g+i)%2 == 0 {
					f = call
				}
				want := fmt.Sprintf("%d-%d", g, i)
				if v, err := redis.String(f(n, time.Second, "ECHO", want)); err != nil || v != want {
					t.Errorf("ECHO %s = %q, %v", want, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Requests written behind a Call still reading its reply are read after it,
// by the reader; a Call whose reply comes late fails at its deadline and
// kills the connection, so the late reply never reaches a later request
// (A3, C1).
func TestCallBehindAndLate(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	if _, err := do(n, time.Second, "PING"); err != nil {
		t.Fatal(err)
	}
	// BLPOP holds this connection's replies back for 100ms.
	idle(t, n) // or the Call would be a Do
	h := &ordered{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Call(Request{Cmd: "BLPOP", Args: []any{"empty", "0.1"}, Deadline: time.Now().Add(time.Second), H: h, Node: 1})
	}()
	inFlight(t, n)
	h.wg.Add(1)
	n.Do(Request{Cmd: "ECHO", Args: []any{"behind"}, Deadline: time.Now().Add(time.Second), H: h, Node: 2})
	<-done
	h.wg.Wait()
	if got := fmt.Sprint(h.got); got != "[1 <nil> <nil> 2 behind <nil>]" {
		t.Fatalf("replies = %s; want the Call's nil, then the ECHO behind it", got)
	}

	got := make(chan string, 1)
	idle(t, n)
	start := time.Now()
	go func() {
		_, err := call(n, 50*time.Millisecond, "BLPOP", "empty", "0.3")
		got <- fmt.Sprint(err)
	}()
	inFlight(t, n)
	if _, err := do(n, time.Second, "ECHO", "queued"); err == nil {
		t.Fatal("a request behind a Call that timed out got a reply from the dead connection")
	}
	if err := <-got; err != ErrTimeout.Error() {
		t.Fatalf("late Call = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("a Call with a 50ms deadline took %v", d)
	}
	for _, f := range []func(*Node, time.Duration, string, ...any) (any, error){call, do, call} {
		if v, err := redis.String(f(n, time.Second, "ECHO", "fresh")); err != nil || v != "fresh" {
			t.Fatalf("ECHO on the new connection = %q, %v", v, err)
		}
	}
}

// C1: a Call on a frozen node blocks no longer than its deadline; Close
// waits for a Call still reading, and leaks nothing.
func TestCallFrozenNodeAndClose(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0]) // its clean-up closes it again: a no-op
	if _, err := call(n, time.Second, "PING"); err != nil {
		t.Fatal(err)
	}
	idle(t, n)
	c.Nodes()[0].Pause()
	start := time.Now()
	if _, err := call(n, 100*time.Millisecond, "PING"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Call to a frozen node = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a Call with a 100ms deadline to a frozen node took %v", d)
	}
	c.Nodes()[0].Resume()
	if _, err := call(n, time.Second, "PING"); err != nil {
		t.Fatalf("Call after resume: %v", err)
	}
	idle(t, n)
	done := make(chan error, 1)
	go func() {
		_, err := call(n, time.Second, "BLPOP", "empty", "0.1")
		done <- err
	}()
	inFlight(t, n)
	n.Close()
	if err := <-done; err != nil {
		t.Fatalf("Call in flight at Close = %v, want its reply", err)
	}
}

// idle waits until n's connection is idle and nobody holds its write
// token: a Call then writes and reads its own request.
func idle(t *testing.T, n *Node) {
	t.Helper()
	waitNode(t, n, "idle", func() bool { return !n.writing && len(n.queue) == 0 && n.cur != nil && n.cur.idle() })
}

// inFlight waits until a request is on n's connection, unanswered: a
// Call started in another goroutine has taken the connection, and what is
// sent now is written behind it.
func inFlight(t *testing.T, n *Node) {
	t.Helper()
	waitNode(t, n, "carrying a request", func() bool { return n.cur != nil && n.cur.unanswered.Load() > 0 })
}

// waitNode waits, for up to 10s, until cond holds under n.mu.
func waitNode(t *testing.T, n *Node, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		ok := cond()
		n.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node's connection is not %s after 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A3: a Call with a timeout and no deadline counts the timeout from its
// write, as Do does (found by review: it failed at once with ErrTimeout,
// having sent nothing).
func TestCallWithTimeoutOnly(t *testing.T) {
	c := redistest.New(t, 1)
	n := newNode(t, c.Addrs()[0])
	w := waiter{make(chan result, 1)}
	n.Do(Request{Cmd: "PING", Timeout: time.Second, H: w})
	if r := <-w.ch; r.err != nil {
		t.Fatalf("Do with Timeout: %v", r.err)
	}
	idle(t, n)
	n.Call(Request{Cmd: "PING", Timeout: time.Second, H: w})
	if r := <-w.ch; r.err != nil {
		t.Fatalf("Call with Timeout (no Deadline) = %v, want PONG as Do gives", r.err)
	}
}
