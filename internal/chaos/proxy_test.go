package chaos

import (
	"bufio"
	"net"
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
