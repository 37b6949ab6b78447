package redlock

import "sync"

// queue orders a client's own waiters for each lock name: only the head
// makes attempts, woken by a release or by its retry timer. Without it, the
// waiters of one client woken by the same release would all attempt at
// once, and their requests, reaching the nodes in different orders, would
// split the grants so that nobody reached a quorum (split votes); with it
// they take turns, first come first served, so no waiter of a client
// starves behind its siblings. Waiters of other clients still compete.
type queue struct {
	mu    sync.Mutex
	names map[string][]*ticket
}

// ticket is one waiter's place; poke wakes it (the same channel its
// release notifications arrive on).
type ticket struct {
	poke chan struct{}
}

func (q *queue) join(name string, poke chan struct{}) *ticket {
	t := &ticket{poke: poke}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.names == nil {
		q.names = map[string][]*ticket{}
	}
	q.names[name] = append(q.names[name], t)
	return t
}

// head reports whether t is first in line for name.
func (q *queue) head(name string, t *ticket) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	line := q.names[name]
	return len(line) > 0 && line[0] == t
}

// leave removes t; if t was first, the next in line is poked so that it
// attempts now rather than at its next timer.
func (q *queue) leave(name string, t *ticket) {
	q.mu.Lock()
	defer q.mu.Unlock()
	line := q.names[name]
	for i, x := range line {
		if x != t {
			continue
		}
		line = append(line[:i], line[i+1:]...)
		if len(line) == 0 {
			delete(q.names, name)
		} else {
			q.names[name] = line
			if i == 0 {
				select {
				case line[0].poke <- struct{}{}:
				default:
				}
			}
		}
		return
	}
}
