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

// Claims returns how many claims of locks handed over c sent (L12).
func Claims(c *Client) int64 { return c.stats.claims.Load() }

// ClaimDecided reports whether l's delayed claim was sent or dropped (L12).
func ClaimDecided(l *Lock) bool { return l.line != nil && l.line.claimDecided.Load() }

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
	return LineTakeWith(do, name, id, "dead-waiter-value", ticket, lifetime, seq)
}

// LineTakeWith is LineTake with the attempt's value.
func LineTakeWith(do func(cmd string, args ...any) (any, error), name, id, value string, ticket int64, lifetime time.Duration, seq uint64) (any, error) {
	args := []any{lineSrc, 4, LockKey(name), LineKey(name), CounterKey(name), GrantsKey(name), "take", id, value,
		10000, ticket, lifetime.Milliseconds(), "0"}
	if seq != 0 {
		args = append(args, seq, lifetime.Milliseconds()) // a lease of the entry's lifetime
	}
	return do("EVAL", args...)
}

// LineUndo runs a waiter's undo of its attempt with value (line.lua undo),
// the waiter keeping ticket; LineLeave its leave, passing on value where
// the key holds it (” after it took the lock).
func LineUndo(do func(cmd string, args ...any) (any, error), name, id, value string, ticket int64, lifetime, reserve time.Duration) (any, error) {
	return do("EVAL", lineSrc, 4, LockKey(name), LineKey(name), CounterKey(name), GrantsKey(name), "undo", id, value, ticket, lifetime.Milliseconds(), reserve.Milliseconds())
}

func LineLeave(do func(cmd string, args ...any) (any, error), name, id, value string, reserve time.Duration) (any, error) {
	return do("EVAL", lineSrc, 4, LockKey(name), LineKey(name), CounterKey(name), GrantsKey(name), "leave", id, reserve.Milliseconds(), value)
}

// Release runs a lock's release (release.lua, announced, with a
// reservation of reserve) of value on conn, as Unlock sends it: with the
// id of the waiter that took it in line, or "".
func Release(do func(cmd string, args ...any) (any, error), name, value, waiter string, reserve time.Duration) (any, error) {
	args := []any{releaseSrc, 3, LockKey(name), LineKey(name), GrantsKey(name), value, "1", reserve.Milliseconds()}
	if waiter != "" {
		args = append(args, waiter)
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
