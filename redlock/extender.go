package redlock

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// extensions keeps a client's auto-extended locks alive (WithAutoExtend):
// one goroutine per client sleeps until the next lock is due, about every
// TTL/3 per lock, and each due lock is extended by a goroutine that lives
// only for that extension. Extensions due together share each node's
// writes (the pipeline batches them), and a held lock costs a heap entry,
// not a goroutine.
type extensions struct {
	c       *Client
	mu      sync.Mutex
	due     dueHeap
	started bool
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	running sync.WaitGroup
}

type dueLock struct {
	at time.Time
	l  *Lock
}

type dueHeap []dueLock

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueLock)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = dueLock{}
	*h = old[:len(old)-1]
	return x
}

// schedule plans l's next extension a third of its TTL from now.
func (e *extensions) schedule(l *Lock) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if !e.started {
		e.started = true
		e.wake, e.done = make(chan struct{}, 1), make(chan struct{})
		go e.loop()
	}
	heap.Push(&e.due, dueLock{at: e.c.clock.Now().Add(l.ttl / 3), l: l})
	if e.due[0].l == l {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

func (e *extensions) loop() {
	defer close(e.done)
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return
		}
		now := e.c.clock.Now()
		var ready []*Lock
		for len(e.due) > 0 && !e.due[0].at.After(now) {
			ready = append(ready, heap.Pop(&e.due).(dueLock).l)
		}
		wait := time.Hour
		if len(e.due) > 0 {
			wait = e.due[0].at.Sub(now)
		}
		e.running.Add(len(ready))
		e.mu.Unlock()
		for _, l := range ready {
			go func() {
				defer e.running.Done()
				e.extend(l)
			}()
		}
		if len(ready) > 0 {
			continue
		}
		tick := make(chan struct{})
		t := e.c.clock.AfterFunc(wait, func() { close(tick) })
		select {
		case <-tick:
		case <-e.wake:
		}
		t.Stop()
	}
}

// close stops the scheduling and waits for the extensions in progress;
// they stop at their next pause, as the client is closing.
func (e *extensions) close() {
	e.mu.Lock()
	e.closed = true
	started := e.started
	e.mu.Unlock()
	if !started {
		return
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.done
	e.running.Wait()
}

// extend is one due extension of l (E1-E4). An extension that fails is
// retried while one can still finish before Until(); when none can, the
// lock is given up (E4): invalidated locally first, Done closed with
// ErrLockLost (H2), then released on the nodes. Past its max hold, l is not
// extended: it ends at Until(), and is released then (checkExpiry).
func (e *extensions) extend(l *Lock) {
	if l.Err() != nil {
		return // ended: Unlock, or lost
	}
	if l.maxHold > 0 && e.c.clock.Now().Sub(l.acquired) >= l.maxHold {
		l.mu.Lock()
		l.endCause = &LockLostError{Name: l.name, Reason: fmt.Sprintf("held for its max hold of %v", l.maxHold), kind: LostMaxHold}
		l.mu.Unlock()
		return
	}
	if err := l.extendWithRetries(); err != nil {
		l.giveUp(err)
		return
	}
	if l.Err() == nil {
		e.schedule(l)
	}
}

// extendWithRetries extends by one TTL, retrying failures that may be
// transient while a retry can still finish before Until(). It returns nil
// once extended, or when the lock ended or the client is closing meanwhile.
func (l *Lock) extendWithRetries() error {
	for {
		err := l.extend(context.Background(), l.ttl, true)
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
	l.endLocked(&LockLostError{Name: l.name, Reason: "auto-extension gave up", Err: cause, kind: LostExtendFailed})
	held := l.held
	l.unlock()
	if held {
		l.release(context.Background())
	}
}

// wait sleeps d on the client's clock; it returns false when the lock ended
// or the client began closing first.
func (l *Lock) wait(d time.Duration) bool {
	done := l.Done()
	select {
	case <-done:
		return false
	case <-l.c.closing:
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
	case <-done:
		return false
	case <-l.c.closing:
		return false
	}
}
