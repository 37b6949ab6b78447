package clock

import (
	"strings"
	"testing"
	"time"
)

func TestFakeAdvanceRunsDueTimers(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var fired []string
	c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Second, func() { fired = append(fired, "a") })
	stopped := c.AfterFunc(time.Second, func() { fired = append(fired, "never") })
	if !stopped.Stop() {
		t.Fatal("Stop() = false before the timer was due, want true")
	}
	c.Advance(1500 * time.Millisecond)
	if got := c.Now().Sub(start); got != 1500*time.Millisecond {
		t.Fatalf("Now()-start = %v, want 1.5s", got)
	}
	if len(fired) != 1 || fired[0] != "a" {
		t.Fatalf("fired = %v after 1.5s, want [a]", fired)
	}
	c.Advance(time.Second)
	if len(fired) != 2 || fired[1] != "b" {
		t.Fatalf("fired = %v after 2.5s, want [a b]", fired)
	}
}

func TestRealClockIsMonotonic(t *testing.T) {
	a := Real.Now()
	b := Real.Now()
	if b.Before(a) {
		t.Fatalf("Real.Now() went back: %v then %v", a, b)
	}
	// A reading with a monotonic component prints "m=".
	if s := a.String(); !strings.Contains(s, "m=") {
		t.Fatalf("Real.Now() = %q has no monotonic reading", s)
	}
}
