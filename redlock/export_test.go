package redlock

import "time"

// FencingStats returns how many fenced acquisitions reached the fencing
// step, and how many of them took the fast path (F2): tests report the rate.
func FencingStats(c *Client) (fenced, fastPath int64) {
	return c.stats.fenced.Load(), c.stats.fastPath.Load()
}

// HandOvers returns how many of c's locks a release handed over to them
// (L12).
func HandOvers(c *Client) int64 { return c.stats.handOvers.Load() }

// Settled reports whether c's first waiter for name has a latest attempt
// in line that every node answered with no undo sent anywhere: its
// hand-overs count (L12).
func Settled(c *Client, name string) bool {
	c.local.mu.Lock()
	ws := c.local.names[name]
	c.local.mu.Unlock()
	if len(ws) == 0 {
		return false
	}
	b := ws[0].bell
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.h.settled
}

// LineTake runs a waiter's attempt in line (line.lua take) on conn as a
// waiter that then stops: tests put a dead waiter in line with it. With
// seq not 0 the attempt registers its value for a hand-over (L12), as a
// waiter without fencing does.
func LineTake(do func(cmd string, args ...any) (any, error), name, id string, ticket int64, lifetime time.Duration, seq uint64) (any, error) {
	args := []any{lineSrc, 4, LockKey(name), LineKey(name), CounterKey(name), GrantsKey(name), "take", id, "dead-waiter-value",
		10000, ticket, lifetime.Milliseconds(), "0"}
	if seq != 0 {
		args = append(args, seq, lifetime.Milliseconds()) // a lease of the entry's lifetime
	}
	return do("EVAL", args...)
}

// SetLinger sets how long c's subscriptions of a name outlive its last
// waiter (L10): tests shorten or lengthen it.
func SetLinger(c *Client, d time.Duration) {
	c.wait.mu.Lock()
	c.wait.linger = d
	c.wait.mu.Unlock()
}

// Lingering returns how many of c's subscribed names have nobody waiting.
func Lingering(c *Client) int { return c.wait.lingering() }

// Waiting returns how many of c's own Lock callers wait for name (L9).
func Waiting(c *Client, name string) int {
	c.local.mu.Lock()
	defer c.local.mu.Unlock()
	return len(c.local.names[name])
}

// ChannelID returns the id of c's release channels (L10).
func ChannelID(c *Client) string { return c.chanID }

// SemaphoreWaiting returns how many of c's own Acquire callers wait for
// semaphore name (L9).
func SemaphoreWaiting(c *Client, name string) int {
	c.sems.mu.Lock()
	defer c.sems.mu.Unlock()
	return len(c.sems.names[name])
}

// lingering returns how many groups are subscribed with nobody waiting.
func (w *waiters) lingering() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idle.Len()
}
