package redlock

import (
	"slices"
	"sync"
)

// queue orders a client's own waiters for each lock name (ALGORITHM.md L9):
// only the first of them stands in the line on the nodes and makes
// attempts; the others wait here, costing the nodes nothing. When the first
// leaves the line, it puts the next one in its place on the nodes with the
// ticket of that one's own arrival (line.lua leave), so the order across
// clients stays the order of arrival, with no gap in which a later waiter
// of another client could be served first.
type queue struct {
	mu    sync.Mutex
	names map[string][]*waiter
}

func (q *queue) join(name string, w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.names == nil {
		q.names = map[string][]*waiter{}
	}
	q.names[name] = append(q.names[name], w)
}

// head reports whether w is first among the client's waiters for name.
func (q *queue) head(name string, w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	line := q.names[name]
	return len(line) > 0 && line[0] == w
}

// handOff calls send with the waiter after w (or nil), marked as entered
// in the line, while no waiter can leave the queue: a successor that gives
// up meanwhile either is not chosen, or sees that it was and sends its own
// leave after this one (gaveUp), so no entry of a waiter that gave up is
// left on the nodes (L4).
func (q *queue) handOff(name string, w *waiter, send func(next *waiter)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next *waiter
	line := q.names[name]
	if i := slices.Index(line, w); i >= 0 && i+1 < len(line) {
		next = line[i+1]
		next.entered.Store(true)
	}
	send(next)
}

// leave removes w; if w was first, the next is rung so that it attempts
// now rather than at its next timer.
func (q *queue) leave(name string, w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	line := q.names[name]
	for i, x := range line {
		if x != w {
			continue
		}
		line = append(line[:i], line[i+1:]...)
		if len(line) == 0 {
			delete(q.names, name)
		} else {
			q.names[name] = line
			if i == 0 {
				line[0].bell.ring()
			}
		}
		return
	}
}
