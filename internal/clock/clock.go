// Package clock is the time source of quorumlock: the real monotonic clock,
// and a fake one that tests move by hand.
//
// Every deadline in the library is computed from a Clock (ALGORITHM.md H1):
// times returned by Real carry Go's monotonic reading, so differences and
// comparisons between them ignore wall-clock steps.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and schedules callbacks. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time, with a monotonic reading.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed. Stop on
	// the returned Timer cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call from AfterFunc.
type Timer interface {
	// Stop cancels the call and reports whether it did so before it ran.
	Stop() bool
}

// Real is the system's monotonic clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a Clock that moves only when Advance is called. The zero value is
// not ready; use NewFake.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock that reads start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and runs, in order, the callbacks that
// became due (each in the calling goroutine, so tests stay deterministic).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	var due []*fakeTimer
	kept := f.timers[:0]
	for _, t := range f.timers {
		if !t.at.After(f.now) {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	f.timers = kept
	f.mu.Unlock()
	for _, t := range due {
		t.fire()
	}
}

// AfterFunc schedules f to run when the fake time reaches Now()+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{clock: f, f: fn}
	f.mu.Lock()
	t.at = f.now.Add(d)
	if d <= 0 { // already due: run it now, in its own goroutine as time.AfterFunc would
		f.mu.Unlock()
		go t.fire()
		return t
	}
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	return t
}

type fakeTimer struct {
	clock *Fake
	at    time.Time
	f     func()
	once  sync.Once
	done  bool
}

func (t *fakeTimer) fire() { t.once.Do(func() { t.done = true; t.f() }) }

func (t *fakeTimer) Stop() bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return true
		}
	}
	return false
}
