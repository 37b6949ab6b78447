package redlock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// autoExtend keeps the lock alive (WithAutoExtend): it extends about every
// TTL/3 until the lock ends. An extension that fails is retried while one
// can still finish before Until(); when none can, the lock is given up
// (E4): invalidated locally first, Done closed with ErrLockLost (H2), then
// released on the nodes. With maxHold > 0 it stops extending once the lock
// has been held that long, and the lock ends at its Until().
func (l *Lock) autoExtend(maxHold time.Duration) {
	c := l.c
	for {
		if !l.wait(l.ttl / 3) {
			return // ended: Unlock, or lost
		}
		if maxHold > 0 && c.clock.Now().Sub(l.acquired) >= maxHold {
			l.mu.Lock()
			l.endCause = fmt.Errorf("%w: lock %q was held for its max hold of %v", ErrLockLost, l.name, maxHold)
			held := l.held
			l.mu.Unlock()
			<-l.done // checkExpiry closes it at Until() with endCause, or Unlock does
			if held {
				l.release(context.Background())
			}
			return
		}
		if err := l.extendWithRetries(); err != nil {
			l.giveUp(err)
			return
		}
	}
}

// extendWithRetries extends by one TTL, retrying failures that may be
// transient while a retry can still finish before Until(). It returns nil
// once extended, or when the lock ended meanwhile.
func (l *Lock) extendWithRetries() error {
	for {
		err := l.Extend(context.Background(), l.ttl)
		if err == nil || errors.Is(err, ErrNotHeld) {
			return err
		}
		pause := l.ttl/20 + rand.N(l.ttl/20+1)
		if !l.c.clock.Now().Add(pause + l.nodeTimeout).Before(l.Until()) {
			return err
		}
		if !l.wait(pause) {
			return nil
		}
	}
}

// giveUp ends the lock with ErrLockLost (unless it already ended) and then
// releases it on the nodes, unless Unlock did already.
func (l *Lock) giveUp(cause error) {
	l.mu.Lock()
	l.endLocked(fmt.Errorf("%w: lock %q: auto-extension gave up: %w", ErrLockLost, l.name, cause))
	held := l.held
	l.mu.Unlock()
	if held {
		l.release(context.Background())
	}
}

// wait sleeps d on the client's clock; it returns false when the lock ended
// first.
func (l *Lock) wait(d time.Duration) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	if d <= 0 {
		return true
	}
	tick := make(chan struct{})
	t := l.c.clock.AfterFunc(d, func() { close(tick) })
	defer t.Stop()
	select {
	case <-tick:
		return true
	case <-l.done:
		return false
	}
}
