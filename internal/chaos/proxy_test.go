package chaos

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The proxy forwards, adds latency, and partitions (requests vanish).
func TestProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	p, err := NewProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(c net.Conn) (time.Duration, error) {
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		start := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return 0, err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return time.Since(start), err
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.SetDelay(100 * time.Millisecond)
	if d, err := roundTrip(c); err != nil || d < 100*time.Millisecond {
		t.Fatalf("with 100ms delay: %v, %v; want >= 100ms", d, err)
	}
	p.SetDelay(0)
	p.Cut()
	if _, err := roundTrip(c); err == nil {
		t.Fatal("a request crossed a cut proxy")
	}
	p.Mend()
	c.Close()
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c2); err != nil {
		t.Fatalf("after Mend: %v", err)
	}
	c2.Close()
	p.Close()
	echo.Close()
	<-done
}

// echoServer echoes lines and counts the bytes it received; stop closes it
// and waits for its goroutines.
func echoServer(t *testing.T) (addr string, received func() int64, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					n.Add(int64(len(line)))
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String(), n.Load, func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends line on c and returns what came back, or the error.
func echo(c net.Conn, line string, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(line)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// A cut never leaves a connection that lost bytes running: the next chunk
// after the cut resets it, or a pipelined client would read the reply to a
// later request as the reply to the lost one. A connection that lost
// nothing goes on. A gate shared by two proxies cuts both.
func TestProxyCutResetsConnectionsThatLostBytes(t *testing.T) {
	addr, _, stop := echoServer(t)
	defer stop()
	g := &Gate{}
	p, err := NewProxy(addr, g)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q, err := NewProxy(addr, g)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	lossy, idle, other := dial(t, p.Addr()), dial(t, p.Addr()), dial(t, q.Addr())
	for _, c := range []net.Conn{lossy, idle, other} {
		if got, err := echo(c, "hello\n", 2*time.Second); err != nil || got != "hello\n" {
			t.Fatalf("before the cut: %q, %v", got, err)
		}
	}
	g.Cut()
	if _, err := echo(lossy, "lost\n", 100*time.Millisecond); err == nil {
		t.Fatal("a request crossed a cut gate")
	}
	if _, err := echo(other, "lost too\n", 100*time.Millisecond); err == nil {
		t.Fatal("a request crossed the other proxy of a cut gate")
	}
	g.Mend()
	if got, err := echo(lossy, "after\n", 2*time.Second); err == nil {
		t.Fatalf("a connection that lost a request went on after the cut: read %q", got)
	}
	if got, err := echo(idle, "after\n", 2*time.Second); err != nil || got != "after\n" {
		t.Fatalf("a connection that lost nothing: %q, %v; want it to go on", got, err)
	}
}

// Kill is a crash of the client: its connections close, new ones are
// closed at once, and nothing it sends afterwards reaches the node.
func TestProxyKill(t *testing.T) {
	addr, received, stop := echoServer(t)
	defer stop()
	p, err := NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	old := dial(t, p.Addr())
	if got, err := echo(old, "hello\n", 2*time.Second); err != nil || got != "hello\n" {
		t.Fatalf("before Kill: %q, %v", got, err)
	}
	p.Kill()
	before := received()
	if _, err := echo(old, "from the dead\n", 2*time.Second); err == nil {
		t.Fatal("a connection survived Kill")
	}
	c, err := net.Dial("tcp", p.Addr())
	if err == nil { // the port stays bound: accepted, then closed at once
		defer c.Close()
		if _, err := echo(c, "from the dead\n", 2*time.Second); err == nil {
			t.Fatal("a new connection was served after Kill")
		}
	}
	p.Close() // no forwarding goroutine is left: nothing more can arrive
	if got := received(); got != before {
		t.Fatalf("the node received %d bytes after Kill", got-before)
	}
}
