package redlock

import (
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/pool"
)

// Bad input: every out-of-range option gives ErrInvalidOption naming the value.
func TestNewRejectsBadInput(t *testing.T) {
	ok := func(addr string) pool.Pool { return &fakePool{addr: addr} }
	three := []pool.Pool{ok("a:1"), ok("b:1"), ok("c:1")}
	for _, tc := range []struct {
		name  string
		pools []pool.Pool
		opts  []Option
		want  string
	}{
		{"no pools", nil, nil, "no pools"},
		{"nil pool", []pool.Pool{ok("a:1"), nil}, nil, "pool 1 is nil"},
		{"same address", []pool.Pool{ok("a:1"), ok("b:1"), ok("a:1")}, nil, `pools 0 and 2 have the same address "a:1"`},
		{"bad pool option", []pool.Pool{pool.New("a:1", pool.WithMaxActive(0))}, nil, "max active 0"},
		{"empty pool address", []pool.Pool{pool.New("")}, nil, "empty address"},
		{"ttl zero", three, []Option{WithTTL(0)}, "TTL 0s"},
		{"ttl negative", three, []Option{WithTTL(-time.Second)}, "TTL -1s"},
		{"ttl sub-millisecond", three, []Option{WithTTL(1500 * time.Microsecond)}, "TTL 1.5ms"},
		{"ttl eaten by drift", three, []Option{WithTTL(10 * time.Millisecond), WithNodeTimeout(8 * time.Millisecond)}, "TTL 10ms: leaves no validity"},
		{"tries zero", three, []Option{WithTries(0)}, "tries 0"},
		{"drift negative", three, []Option{WithDriftFactor(-0.1)}, "drift factor -0.1"},
		{"drift half", three, []Option{WithDriftFactor(0.5)}, "drift factor 0.5"},
		{"drift NaN", three, []Option{WithDriftFactor(math.NaN())}, "drift factor NaN"},
		{"node timeout zero", three, []Option{WithNodeTimeout(0)}, "node timeout 0s"},
		{"node timeout over TTL", three, []Option{WithTTL(time.Second), WithNodeTimeout(time.Second)}, "node timeout 1s: must be < TTL 1s"},
		{"nil retry delay", three, []Option{WithRetryDelay(nil)}, "retry delay: nil"},
		{"max hold negative", three, []Option{WithAutoExtend(), WithMaxHold(-time.Second)}, "max hold -1s"},
		{"max hold alone", three, []Option{WithMaxHold(time.Minute)}, "max hold 1m0s: needs WithAutoExtend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.pools, tc.opts...)
			if c != nil || !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want ErrInvalidOption mentioning %q", c, err, tc.want)
			}
		})
	}
}

// Bad input on a call: the name and per-call options are checked before
// anything is sent, and nothing held is touched.
func TestCallRejectsBadInput(t *testing.T) {
	var sent atomic.Int64
	count := func(cmd string, _ []any) (any, error) {
		sent.Add(1)
		if cmd == "SET" {
			return nil, nil // granted
		}
		return int64(1), nil
	}
	c := newTestClient(t, []pool.Pool{&fakePool{addr: "a:1", reply: count}})
	for _, tc := range []struct {
		name, lock string
		opts       []Option
		want       string
	}{
		{"empty name", "", nil, "empty lock name"},
		{"long name", strings.Repeat("x", MaxNameLen+1), nil, "lock name of 1025 bytes"},
		{"bad ttl", "ok", []Option{WithTTL(-1)}, "TTL -1ns"},
		{"bad tries", "ok", []Option{WithTries(-3)}, "tries -3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []func() (*Lock, error){
				func() (*Lock, error) { return c.TryLock(t.Context(), tc.lock, tc.opts...) },
				func() (*Lock, error) { return c.Lock(t.Context(), tc.lock, tc.opts...) },
			} {
				l, err := call()
				if l != nil || !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("= %v, %v; want ErrInvalidOption mentioning %q", l, err, tc.want)
				}
			}
		})
	}
	if n := sent.Load(); n != 0 {
		t.Fatalf("%d requests sent for bad input, want 0", n)
	}
	// A name of exactly MaxNameLen is fine; a bad Extend TTL keeps the lock.
	l, err := c.TryLock(t.Context(), strings.Repeat("x", MaxNameLen))
	if err != nil {
		t.Fatalf("TryLock with a %d-byte name: %v", MaxNameLen, err)
	}
	until := l.Until()
	if err := l.Extend(t.Context(), 0); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "TTL 0s") {
		t.Fatalf("Extend(0) = %v, want ErrInvalidOption naming TTL 0s", err)
	}
	if !l.Until().Equal(until) {
		t.Fatalf("Until() changed after a rejected Extend")
	}
}
