package redlock

import (
	"flag"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The interleaving tests explore, for each configuration, every state the
// protocol can reach on N model nodes (linemodel_world_test.go): one
// holder that holds the lock at the start and releases it within holdFor,
// and waiters that arrive within arrive (their first attempt plain, then
// in line), or that start in line on every node (registered). Time is
// counted in tau (one quantum per tau); entries live 4 tau and
// reservations last 4 tau, as line.go sets them. The state spaces are
// bounded by the horizon (the model time explored), the number of waiters
// and the faults allowed; -interleave.deep explores larger ones.
var deepInterleavings = flag.Bool("interleave.deep", false, "also explore the larger interleaving configurations (tens of seconds; minutes with -race)")

// exploreAll explores the configurations in parallel subtests (the
// exploration is single-threaded and CPU-bound) and returns their
// explorers once all are done.
func exploreAll(t *testing.T, cfgs []*worldConfig) []*explorer {
	t.Helper()
	xs := make([]*explorer, len(cfgs))
	var mu sync.Mutex
	t.Run("configurations", func(t *testing.T) {
		for i, cfg := range cfgs {
			t.Run(cfg.name, func(t *testing.T) {
				t.Parallel()
				x := explore(t, cfg)
				mu.Lock()
				xs[i] = x
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// A configuration that reproduced a known violation skipped: it has no
	// measures.
	return slices.DeleteFunc(xs, func(x *explorer) bool { return x == nil })
}

// withDeep appends the deep configurations when asked for.
func withDeep(cfgs []*worldConfig, deep ...*worldConfig) []*worldConfig {
	if *deepInterleavings {
		return append(cfgs, deep...)
	}
	return cfgs
}

// L2, A7, A8 (and R2, R3): never two holders. In every state of every
// interleaving, each client that believes it holds the lock (it decided
// success, has not sent its release, and T1 + TTL has not passed) has its
// value on Q live keys, and at most one client believes so; and no node's
// live lock ever changes except by its holder's release. The TTL is short
// (2 tau) so that keys expire under holders that keep past their
// deadline, and faults are allowed beyond a minority (lost requests, lost
// replies, slow connections whose requests run after the client gave up
// on them, undo overtaking the write it undoes): safety must not depend on
// them. The per-node facts behind it are checked on every command and
// state in TestLineModelNeverAddsAGrant.
func TestInterleavingsNeverTwoHolders(t *testing.T) {
	t.Parallel()
	xs := exploreAll(t, withDeep([]*worldConfig{
		{name: "N=1, 2 waiters arriving, 2 faults, TTL 2 tau", n: 1, waiters: 2, q: 1, faults: 2, arrive: 1, holdFor: 3, horizon: 6, ttl: 2},
		{name: "N=3, 2 waiters arriving, TTL 2 tau", n: 3, waiters: 2, q: 1, arrive: 1, holdFor: 3, horizon: 8, ttl: 2},
		{name: "N=3, 2 waiters in line, 1 fault, TTL 2 tau", n: 3, waiters: 2, q: 1, registered: true, faults: 1, holdFor: 2, horizon: 5, ttl: 2},
		{name: "N=3, 2 waiters arriving in line at once (L11), TTL 2 tau", n: 3, waiters: 2, q: 1, direct: true, arrive: 1, holdFor: 3, horizon: 8, ttl: 2},
		{name: "N=1, 2 waiters arriving in line at once (L11), 2 faults, TTL 2 tau", n: 1, waiters: 2, q: 1, direct: true, faults: 2, arrive: 1, holdFor: 3, horizon: 6, ttl: 2},
	},
		&worldConfig{name: "deep: N=1, 2 waiters arriving, 2 faults, TTL 3 tau", n: 1, waiters: 2, q: 1, faults: 2, arrive: 1, holdFor: 4, horizon: 8, ttl: 3},
		&worldConfig{name: "deep: N=3, 2 waiters in line, 1 fault, TTL 3 tau", n: 3, waiters: 2, q: 1, registered: true, faults: 1, holdFor: 4, horizon: 6, ttl: 3},
		&worldConfig{name: "deep: N=3, 2 waiters arriving, 1 fault, TTL 3 tau", n: 3, waiters: 2, q: 1, faults: 1, arrive: 0, holdFor: 4, horizon: 5, ttl: 3},
		&worldConfig{name: "deep: N=3, 2 waiters arriving in line at once (L11), 1 fault, TTL 2 tau", n: 3, waiters: 2, q: 1, direct: true, faults: 1, arrive: 1, holdFor: 3, horizon: 7, ttl: 2},
	))
	for _, x := range xs {
		if x.successes == 0 || x.late == 0 {
			t.Errorf("%s: %d successes, %d releases after the deadline: the search proves little", x.cfg.name, x.successes, x.late)
		}
	}
}

// L1 (with L2, L11): when every node has every registration, waiters are served
// in ticket order. Whenever a holder releases while the first waiter by
// ticket has a live entry on every node, in a run without faults, down
// nodes or stopped waiters, the next to take the lock must be that waiter
// (not another waiter, not a newcomer's plain SET NX), whatever the order
// of the deliveries: the registrations racing the release, the releases
// racing the attempts, the leave of the last holder racing everything.
func TestInterleavingsServeInTicketOrder(t *testing.T) {
	t.Parallel()
	xs := exploreAll(t, withDeep([]*worldConfig{
		{name: "N=1, 3 waiters arriving", n: 1, waiters: 3, q: 1, arrive: 1, holdFor: 3, horizon: 16, ttl: 1000},
		{name: "N=3, 2 waiters arriving", n: 3, waiters: 2, q: 1, arrive: 1, holdFor: 2, horizon: 10, ttl: 1000},
		{name: "N=3, 3 waiters in line", n: 3, waiters: 3, q: 1, registered: true, holdFor: 2, horizon: 6, ttl: 1000},
		{name: "N=5, 2 waiters in line", n: 5, waiters: 2, q: 1, registered: true, holdFor: 1, horizon: 6, ttl: 1000},
		{name: "N=1, 3 waiters arriving in line at once (L11)", n: 1, waiters: 3, q: 1, direct: true, arrive: 1, holdFor: 3, horizon: 16, ttl: 1000},
		{name: "N=3, 2 waiters arriving in line at once (L11)", n: 3, waiters: 2, q: 1, direct: true, arrive: 1, holdFor: 2, horizon: 10, ttl: 1000},
	},
		&worldConfig{name: "deep: N=1, 2 waiters arriving, half-tau steps", n: 1, waiters: 2, q: 2, arrive: 2, holdFor: 6, horizon: 30, ttl: 1000},
		&worldConfig{name: "deep: N=3, 2 waiters arriving, longer", n: 3, waiters: 2, q: 1, arrive: 1, holdFor: 3, horizon: 14, ttl: 1000},
		&worldConfig{name: "deep: N=3, 3 waiters in line, longer", n: 3, waiters: 3, q: 1, registered: true, holdFor: 2, horizon: 9, ttl: 1000},
		&worldConfig{name: "deep: N=5, 2 waiters in line, longer", n: 5, waiters: 2, q: 1, registered: true, holdFor: 2, horizon: 7, ttl: 1000},
	))
	for _, x := range xs {
		if x.orderChecks == 0 {
			t.Errorf("%s: no release found every waiter registered everywhere: the order was never checked", x.cfg.name)
		}
	}
}

// L6 (with L3, L7, L8): progress, no livelock. From every reachable state
// where a holder has released and waiters keep attempting every tau, some
// waiter takes the lock within 10 tau (an entry's lifetime, a
// reservation, a refresh interval and a round trip), also when the
// nodes' lines differ: a registration, an undo, a leave, a release or a
// reply lost on one node, or one connection slow (its requests run late
// or never: a write after its undo), or a minority of nodes down all
// along; and on nodes whose ACL user may not use the line (L8: plain
// Redlock). The check covers every release made at least 10 tau before
// the horizon.
func TestInterleavingsAlwaysHandOver(t *testing.T) {
	t.Parallel()
	const bound = 10
	xs := exploreAll(t, withDeep([]*worldConfig{
		{name: "N=3, 2 waiters in line, 1 fault", n: 3, waiters: 2, q: 1, registered: true, faults: 1, holdFor: 1, horizon: 12, ttl: 1000, bound: bound},
		{name: "N=3, 2 waiters arriving, a node down", n: 3, waiters: 2, q: 1, down: []int{2}, arrive: 1, holdFor: 2, horizon: 14, ttl: 1000, bound: bound},
		{name: "N=5, 2 waiters in line, a node down", n: 5, waiters: 2, q: 1, registered: true, down: []int{0}, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
		{name: "N=5, 2 waiters in line, 2 nodes down", n: 5, waiters: 2, q: 1, registered: true, down: []int{0, 1}, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
		{name: "N=1, 2 waiters arriving, the line without its rights", n: 1, waiters: 2, q: 1, noRights: true, arrive: 1, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
		{name: "N=3, 2 waiters arriving in line at once (L11), a node down", n: 3, waiters: 2, q: 1, direct: true, down: []int{2}, arrive: 1, holdFor: 2, horizon: 14, ttl: 1000, bound: bound},
	},
		&worldConfig{name: "deep: N=3, 2 waiters arriving, 1 fault", n: 3, waiters: 2, q: 1, faults: 1, arrive: 0, holdFor: 2, horizon: 12, ttl: 1000, bound: bound},
	))
	for _, x := range xs {
		if x.handovers == 0 {
			t.Errorf("%s: no release was followed by a success: progress was never checked", x.cfg.name)
		}
	}
	longest(t, xs)
}

// L3, L4: a waiter that stops attempting (it dies, freezes, is cut off:
// it sends nothing more), or gives up and leaves, anywhere in the line,
// delays the next by at most its entry's lifetime plus a reservation plus
// a refresh interval: 9 tau, counted from the release (in the model a
// round trip takes no time). Any waiter may stop at any moment it is
// waiting, in every interleaving.
func TestInterleavingsBoundDeadWaiterHoldBack(t *testing.T) {
	t.Parallel()
	const bound = 4 + 4 + 1 // lineLifetime + reserveFor + refreshEvery, in tau
	xs := exploreAll(t, withDeep([]*worldConfig{
		{name: "N=1, 3 waiters arriving, one stops", n: 1, waiters: 3, q: 1, dying: true, arrive: 1, holdFor: 2, horizon: 14, ttl: 1000, bound: bound},
		{name: "N=3, 2 waiters in line, one stops", n: 3, waiters: 2, q: 1, registered: true, dying: true, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
		{name: "N=1, 3 waiters arriving in line at once (L11), one stops", n: 1, waiters: 3, q: 1, direct: true, dying: true, arrive: 1, holdFor: 2, horizon: 14, ttl: 1000, bound: bound},
	},
		&worldConfig{name: "deep: N=3, 2 waiters arriving, one stops", n: 3, waiters: 2, q: 1, dying: true, arrive: 1, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
		&worldConfig{name: "deep: N=3, 3 waiters in line, one stops", n: 3, waiters: 3, q: 1, registered: true, dying: true, holdFor: 2, horizon: 13, ttl: 1000, bound: bound},
	))
	for _, x := range xs {
		if x.stops == 0 || x.handovers == 0 {
			t.Errorf("%s: %d stops, %d hand-overs: the bound was never put to the test", x.cfg.name, x.stops, x.handovers)
		}
	}
	longest(t, xs)
}

// longest logs an interleaving with the longest wait found.
func longest(t *testing.T, xs []*explorer) {
	t.Helper()
	var worst *explorer
	for _, x := range xs {
		if worst == nil || x.maxDelay*worst.cfg.q > worst.maxDelay*x.cfg.q {
			worst = x
		}
	}
	if worst == nil || worst.maxPath == nil {
		return
	}
	steps := describe(worst.cfg, worst.maxPath)
	if i := strings.LastIndex(steps, "releases"); i >= 0 { // from the last release on
		if j := strings.LastIndex(steps[:i], "\n"); j >= 0 {
			steps = steps[j+1:]
		}
	}
	t.Logf("longest wait: %d tau after a release, in %s:\n  %s", worst.maxDelay/worst.cfg.q, worst.cfg.name, steps)
}
