package redlock

import "time"

// FencingStats returns how many fenced acquisitions reached the fencing
// step, and how many of them took the fast path (F2): tests report the rate.
func FencingStats(c *Client) (fenced, fastPath int64) {
	return c.stats.fenced.Load(), c.stats.fastPath.Load()
}

// LineTake runs a waiter's attempt in line (line.lua take) on conn as a
// waiter that then stops: tests put a dead waiter in line with it.
func LineTake(do func(cmd string, args ...any) (any, error), name, id string, ticket int64, lifetime time.Duration) (any, error) {
	return do("EVAL", lineSrc, 3, LockKey(name), LineKey(name), CounterKey(name), "take", id, "dead-waiter-value",
		10000, ticket, lifetime.Milliseconds(), "0")
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
