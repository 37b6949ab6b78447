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
