package redlock

// FencingStats returns how many fenced acquisitions reached the fencing
// step, and how many of them took the fast path (F2): tests report the rate.
func FencingStats(c *Client) (fenced, fastPath int64) {
	return c.stats.fenced.Load(), c.stats.fastPath.Load()
}
