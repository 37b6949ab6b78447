package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
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

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		opts []pool.Option
		want string
	}{
		{"empty address", "", nil, "empty address"},
		{"dial timeout", "a:1", []pool.Option{pool.WithDialTimeout(0)}, "dial timeout 0s"},
		{"read timeout", "a:1", []pool.Option{pool.WithReadTimeout(-time.Second)}, "read timeout -1s"},
		{"write timeout", "a:1", []pool.Option{pool.WithWriteTimeout(0)}, "write timeout 0s"},
		{"db", "a:1", []pool.Option{pool.WithDB(-1)}, "db -1"},
		{"max idle", "a:1", []pool.Option{pool.WithMaxIdle(-1)}, "max idle -1"},
		{"max active", "a:1", []pool.Option{pool.WithMaxActive(0)}, "max active 0"},
		{"username alone", "a:1", []pool.Option{pool.WithUsername("bob")}, `username "bob": needs a password`},
		{"username, empty password", "a:1", []pool.Option{pool.WithUsername("bob"), pool.WithPassword("")}, `username "bob": empty password`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pool.New(tc.addr, tc.opts...)
			err := pool.Validate(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
			if _, gerr := p.Get(t.Context()); !errors.Is(gerr, err) && gerr.Error() != err.Error() {
				t.Fatalf("Get = %v, want the validation error %v", gerr, err)
			}
		})
	}
	if err := pool.Validate(pool.FromRedigo(nil, "a:1")); err == nil || !strings.Contains(err.Error(), "nil *redis.Pool") {
		t.Fatalf("FromRedigo(nil) validates as %v, want an error", err)
	}
}

func TestDoEvalSelectAndAuth(t *testing.T) {
	c := redistest.New(t, 1, redistest.WithPassword("pw"))
	p := pool.New(c.Addrs()[0], pool.WithPassword("pw"), pool.WithDB(3))
	defer p.Close()
	if p.Addr() != c.Addrs()[0] {
		t.Fatalf("Addr() = %q, want %q", p.Addr(), c.Addrs()[0])
	}
	if _, err := pool.Do(t.Context(), p, "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	// WithDB(3): the key is in database 3, not 0.
	if n, _ := redis.Int(c.Nodes()[0].Do("DBSIZE")); n != 0 {
		t.Fatalf("DBSIZE of db 0 = %d, want 0 (the pool writes to db 3)", n)
	}
	s := redis.NewScript(1, "return redis.call('GET', KEYS[1])")
	// The first call meets NOSCRIPT and falls back to EVAL; the second
	// runs by hash.
	for i := range 2 {
		v, err := redis.String(pool.Eval(t.Context(), p, s, "k"))
		if err != nil || v != "v" {
			t.Fatalf("Eval #%d = %q, %v; want v", i, v, err)
		}
	}
}

// A3: the context's deadline bounds the round trip to a frozen node, and
// the wait for a connection when the pool is at its cap.
func TestDeadlinesHold(t *testing.T) {
	c := redistest.New(t, 1)
	p := pool.New(c.Addrs()[0], pool.WithMaxActive(1))
	defer p.Close()
	if _, err := pool.Do(t.Context(), p, "PING"); err != nil {
		t.Fatal(err)
	}
	held, err := p.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get at the cap = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Get at the cap took %v with a 50ms deadline", d)
	}
	held.Close()

	if err := c.Nodes()[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer c.Nodes()[0].Resume()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := pool.Do(ctx2, p, "PING"); err == nil {
		t.Fatal("PING to a frozen node succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PING to a frozen node took %v with a 100ms deadline", d)
	}
}
