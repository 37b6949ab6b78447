package chaos

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// Waiter fault kinds: faults of the clients waiting in the line
// (ALGORITHM.md L3, L4), not of the nodes.
const (
	// WaiterCrash: the client vanishes while it waits, at the head of the
	// line or anywhere in it: its connections are cut, it never sends
	// anything again (no Unlock, no leaving the line), and after a while a
	// fresh client takes its place, as a restarted instance would.
	WaiterCrash = "waiter-crash"
	// WaiterFreeze: the client's traffic stops, both ways, sockets open,
	// then resumes (SIGSTOP, then SIGCONT, of its process).
	WaiterFreeze = "waiter-freeze"
)

// Contention is the contention workload: Clients separate clients (each its
// own redlock.Client with its own pools and its own proxy per node, as
// separate service instances would have), one worker each, all contending
// for one name with fencing on, while the fault schedule hurts the nodes and
// the waiter faults hurt the clients.
type Contention struct {
	Clients     int           // separate clients at any time; default 8
	Mortal      int           // of them, how many may crash (each replaced by a fresh client); default 3, at most Clients-2
	WaiterKinds []string      // waiter faults to inject (WaiterCrash, WaiterFreeze)
	WaiterEvery time.Duration // mean pause between two waiter faults; default 1s
	// LockBudget is the context budget of one Lock call; default 20 TTL.
	// An in-model run fails when a Lock call of a running client (not
	// frozen during the call) waits all of it: the line serves waiters in
	// order, so such a wait is starvation. It is generous because a head
	// that cannot complete its turn goes to the back (L7), which under node
	// faults can cost a waiter its place a few times in a row.
	LockBudget time.Duration
	// In-model runs also fail on a drought: Limits.MaxDrought, here the
	// longest time without an acquisition while a running client waited;
	// default 8 TTL. A stopped waiter costs the line about 9 node timeouts
	// (L4), a holder that stops as it takes the lock, or an attempt that
	// runs on a node after its undo, a TTL; with two nodes faulty, one such
	// key on a third stops every quorum for up to a TTL. The limit leaves
	// room for a few of them back to back on a loaded machine.
	// MinJain is the Jain's index an in-model run must reach (see
	// Fairness); 0 means 0.8, and a negative value reports fairness
	// without failing on it.
	MinJain float64
}

func (ct *Contention) defaults(cfg *Config) {
	if ct.Clients == 0 {
		ct.Clients = 8
	}
	if ct.Mortal == 0 {
		ct.Mortal = 3
	}
	ct.Mortal = max(0, min(ct.Mortal, ct.Clients-2))
	if ct.WaiterEvery == 0 {
		ct.WaiterEvery = time.Second
	}
	if ct.LockBudget == 0 {
		ct.LockBudget = 20 * cfg.TTL
	}
	if ct.MinJain == 0 {
		ct.MinJain = 0.8
	}
}

// instance is one client of the contention workload: a service instance,
// from its start to its crash or the end of the run.
type instance struct {
	id      int // unique in the run: its holds and calls carry it
	slot    int
	mortal  bool
	initial bool // started with the run
	peer         // its client, behind its own proxies; its worker

	mu       sync.Mutex
	died     time.Time
	frozen   [][2]time.Time // freeze windows; the last one open (zero end) while frozen
	waitFrom time.Time      // when the Lock call in progress started; zero outside Lock
}

func (in *instance) setWaiting(t time.Time) {
	in.mu.Lock()
	in.waitFrom = t
	in.mu.Unlock()
}

// contention is one contention run in progress.
type contention struct {
	cfg   Config
	ct    Contention
	name  string
	addrs []string // the nodes
	gates []*Gate  // per node: its partitions and latency, for every client
	rec   *Recorder
	res   *Resource

	runCtx context.Context
	wg     sync.WaitGroup // the workers
	inLock atomic.Int64   // clients inside Lock now

	mu        sync.Mutex
	instances []*instance // every one started, in order: index = id
	slots     []*instance // the live one of each slot, nil between a crash and the replacement
	counts    map[string]int
	atHead    map[string]int
	events    []waiterEvent
	errs      []error
}

// waiterEvent is one waiter fault, as injected.
type waiterEvent struct {
	at     time.Time
	client int // the victim's instance id
}

// RunContention runs the contention workload under the node fault schedule
// of cfg and the waiter faults of ct for cfg.Duration (or until ctx ends),
// heals everything, and returns what the checkers found, fairness
// included. cfg.Workers, cfg.Names, cfg.Clients and cfg.Proxies are not
// used: every client has its own proxy per node.
func RunContention(ctx context.Context, cfg Config, ct Contention) (Summary, error) {
	if cfg.Limits.MaxDrought == 0 {
		cfg.Limits.MaxDrought = 8 * cmp.Or(cfg.TTL, 300*time.Millisecond)
	}
	cfg.defaults()
	ct.defaults(&cfg)
	c := &contention{
		cfg: cfg, ct: ct, name: fmt.Sprintf("contention-%d", cfg.Seed%100000),
		rec: &Recorder{}, res: NewResource(), counts: map[string]int{}, atHead: map[string]int{},
		slots: make([]*instance, ct.Clients),
	}
	targets := make([]Target, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		c.addrs = append(c.addrs, n.Addr())
		c.gates = append(c.gates, &Gate{})
		targets[i] = Target{Node: n, Link: c.gates[i]}
	}
	defer c.closeAll()

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	c.runCtx = runCtx
	from := time.Now()
	for slot := range ct.Clients {
		if err := c.start(slot); err != nil {
			return Summary{}, err
		}
	}
	s := &Schedule{Targets: targets, Kinds: cfg.Kinds, MaxFaulty: cfg.MaxFaulty, TTL: cfg.TTL, Every: cfg.Every, Seed: cfg.Seed}
	var faults map[string]int
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); faults = s.Run(runCtx) }()
	go func() { defer bg.Done(); c.waiterFaults(runCtx) }()
	if cfg.OnTick != nil {
		bg.Add(1)
		go func() { defer bg.Done(); tick(runCtx, from, len(cfg.Nodes), c.rec, c.res, s, c.waiting, cfg.OnTick) }()
	}
	bg.Wait() // the run is over and every node and client is healed
	c.wg.Wait()
	to := time.Now()

	c.mu.Lock()
	instances := slices.Clone(c.instances)
	for k, n := range c.counts {
		faults[k] += n
	}
	faultErrs := append(s.Errors(), c.errs...)
	atHead, events := c.atHead, slices.Clone(c.events)
	c.mu.Unlock()
	holds, calls := c.rec.Snapshot()
	lim := cfg.Limits
	f := fairness(instances, holds, calls, from, to)
	f.Clients, f.Mortal, f.AtHead = ct.Clients, ct.Mortal, atHead
	f.LongestStallMs = stallAfter(events, holds, to).Milliseconds()
	f.MinJain = ct.MinJain
	sum := summarize(cfg.Tier, cfg.Seed, from, to, len(cfg.Nodes), ct.Clients, 1, cfg.InModel,
		c.rec, c.res, faults, faultErrs, s.MajorityDown(), lim, waiting(instances, calls))
	sum.Fairness = &f
	if cfg.InModel {
		v := func(cond bool, format string, args ...any) {
			if cond {
				sum.Violations = append(sum.Violations, fmt.Sprintf(format, args...))
			}
		}
		v(f.Starved > 0, "%d Lock calls of running clients waited their whole budget of %v", f.Starved, ct.LockBudget)
		v(ct.MinJain > 0 && f.Jain < ct.MinJain, "Jain's index %.3f over %d whole-run clients (want >= %.2f)", f.Jain, f.WholeRun, ct.MinJain)
	}
	return sum, nil
}

// start starts a fresh client in slot, with its own gate, proxies, pools,
// redlock.Client and worker.
func (c *contention) start(slot int) error {
	in := &instance{slot: slot, mortal: slot >= c.ct.Clients-c.ct.Mortal, peer: newPeer()}
	c.mu.Lock()
	in.id = len(c.instances)
	in.initial = in.id < c.ct.Clients
	c.instances = append(c.instances, in) // closeAll closes what was made, even on failure
	c.mu.Unlock()
	if err := in.connect(c.addrs, c.gates, redlock.WithTTL(c.cfg.TTL), redlock.WithNodeTimeout(c.cfg.NodeTimeout),
		redlock.WithFencing(), redlock.WithTries(1<<30)); err != nil {
		return err
	}
	c.mu.Lock()
	c.slots[slot] = in
	c.mu.Unlock()
	in.run(c.runCtx, &c.wg, func(ctx context.Context) { c.worker(ctx, in) })
	return nil
}

// closeAll closes every client, then its pools and proxies: the crashed
// ones too, only now (their process was gone; nothing of theirs was
// cleaned up when they crashed).
func (c *contention) closeAll() {
	c.mu.Lock()
	instances := slices.Clone(c.instances)
	c.mu.Unlock()
	for _, in := range instances {
		in.close()
	}
}

// worker loops: Lock with a budget, hold a short random time writing to the
// resource, Unlock, a short pause. A crashed worker stops where it is,
// records nothing more and cleans up nothing.
func (c *contention) worker(ctx context.Context, in *instance) {
	rng := rand.New(rand.NewPCG(c.cfg.Seed, uint64(in.id)+1<<32))
	short := func() time.Duration { return time.Duration(rng.Int64N(int64(c.cfg.TTL / 10))) }
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, c.ct.LockBudget)
		at := time.Now()
		in.setWaiting(at)
		c.inLock.Add(1)
		l, err := in.client.Lock(lctx, c.name)
		c.inLock.Add(-1)
		took := time.Since(at)
		in.setWaiting(time.Time{})
		cancel()
		if in.dead.Load() {
			return
		}
		budget := c.ct.LockBudget
		if c.runCtx.Err() != nil { // the run ended the call, not its budget
			budget = 0
		}
		// One name, one line: every acquisition after a wait is a handover.
		c.rec.AddCall(Call{At: at, Took: took, Budget: budget, Acquired: err == nil, Err: err, Client: in.id, Waited: took > c.cfg.NodeTimeout})
		if err != nil {
			continue
		}
		c.hold(ctx, in, l, short())
		select {
		case <-time.After(short()):
		case <-ctx.Done():
		}
	}
}

// hold writes to the resource for length, only before Until() and while
// the lock is not known lost (the holder's discipline), then unlocks; a
// crash stops it at once, with no Unlock.
func (c *contention) hold(ctx context.Context, in *instance, l *redlock.Lock, length time.Duration) {
	start := time.Now()
	c.res.Issued(l.Name(), l.Token())
	stop := start.Add(length)
	for time.Now().Before(stop) && ctx.Err() == nil && !in.dead.Load() {
		if l.Err() != nil || !time.Now().Before(l.Until()) {
			break
		}
		c.res.Write(l.Name(), l.Token())
		time.Sleep(time.Millisecond)
	}
	end := time.Now()
	if u := l.Until(); u.Before(end) {
		end = u
	}
	if !in.dead.Load() {
		l.Unlock(context.WithoutCancel(ctx))
	}
	c.rec.AddHold(Hold{Name: l.Name(), Worker: in.id, Token: l.Token(), Start: start, End: end})
}

// waiterFault is a waiter fault waiting for a victim.
type waiterFault struct {
	kind   string
	atHead bool      // wants the longest-waiting client: the head of the line
	since  time.Time // after a second, any waiter will do
}

type pendingHeal struct {
	at time.Time
	do func()
}

// waiterFaults injects waiter faults, from the seed, about every
// WaiterEvery, until ctx ends; then it ends every freeze.
func (c *contention) waiterFaults(ctx context.Context) {
	if len(c.ct.WaiterKinds) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(c.cfg.Seed, 0xfa17))
	jitter := func() time.Duration {
		return c.ct.WaiterEvery/2 + time.Duration(rng.Int64N(int64(c.ct.WaiterEvery)+1))
	}
	var pending []pendingHeal
	var want *waiterFault
	next := time.Now().Add(jitter())
	for {
		sort.Slice(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
		wake := next
		if want != nil { // look for a victim again soon
			wake = time.Now().Add(5 * time.Millisecond)
		}
		if len(pending) > 0 && pending[0].at.Before(wake) {
			wake = pending[0].at
		}
		select {
		case <-ctx.Done():
			for _, h := range pending {
				h.do() // the freezes end; replacements are not started any more
			}
			return
		case <-time.After(time.Until(wake)):
		}
		now := time.Now()
		for len(pending) > 0 && !pending[0].at.After(now) {
			pending[0].do()
			pending = pending[1:]
		}
		if want == nil && !now.Before(next) {
			want = &waiterFault{kind: c.ct.WaiterKinds[rng.IntN(len(c.ct.WaiterKinds))], atHead: rng.IntN(2) == 0, since: now}
			next = now.Add(jitter())
		}
		if want == nil {
			continue
		}
		in, head := c.victim(rng, want, now)
		if in == nil {
			if now.Sub(want.since) > 2*time.Second {
				want = nil // nobody waits: skip it
			}
			continue
		}
		kind := want.kind
		want = nil
		if h, ok := c.inject(rng, in, kind, head); ok {
			pending = append(pending, h)
		}
	}
}

// victim picks the client for f among those waiting in line: clients
// inside Lock for at least two node timeouts (so they have joined the line
// on the nodes), not frozen, and for a crash mortal. With atHead, only the
// longest-waiting client of all will do, for up to a second: it is the
// head of the line, its ticket the oldest (L1), unless a turn it could not
// complete sent it to the back (L7). Otherwise any candidate. head says
// whether the victim is the longest-waiting client.
func (c *contention) victim(rng *rand.Rand, f *waiterFault, now time.Time) (victim *instance, head bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first *instance
	var firstFrom time.Time
	var cands []*instance
	for _, in := range c.slots {
		if in == nil || in.dead.Load() {
			continue
		}
		in.mu.Lock()
		from := in.waitFrom
		frozen := len(in.frozen) > 0 && in.frozen[len(in.frozen)-1][1].IsZero()
		in.mu.Unlock()
		if from.IsZero() || frozen {
			continue
		}
		if first == nil || from.Before(firstFrom) {
			first, firstFrom = in, from
		}
		if now.Sub(from) >= 2*c.cfg.NodeTimeout && (f.kind != WaiterCrash || in.mortal) {
			cands = append(cands, in)
		}
	}
	if f.atHead && now.Sub(f.since) <= time.Second {
		if first != nil && slices.Contains(cands, first) {
			return first, true
		}
		return nil, false
	}
	if len(cands) == 0 {
		return nil, false
	}
	in := cands[rng.IntN(len(cands))]
	return in, in == first
}

// inject applies a waiter fault to in and says how and when it ends.
func (c *contention) inject(rng *rand.Rand, in *instance, kind string, head bool) (pendingHeal, bool) {
	span := func(lo, hi time.Duration) time.Time {
		return time.Now().Add(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
	}
	c.mu.Lock()
	c.counts[kind]++
	if head {
		c.atHead[kind]++
	}
	c.events = append(c.events, waiterEvent{at: time.Now(), client: in.id})
	c.mu.Unlock()
	switch kind {
	case WaiterCrash:
		now := time.Now()
		in.dead.Store(true) // from now on it acts on nothing
		for _, p := range in.proxies {
			p.Kill() // and nothing of it reaches a node
		}
		in.mu.Lock()
		in.died = now
		in.mu.Unlock()
		in.cancel() // its worker returns; what it sends on the way out goes nowhere
		c.mu.Lock()
		c.slots[in.slot] = nil
		c.mu.Unlock()
		return pendingHeal{at: span(100*time.Millisecond, time.Second), do: func() {
			if c.runCtx.Err() != nil {
				return
			}
			if err := c.start(in.slot); err != nil {
				c.mu.Lock()
				c.errs = append(c.errs, fmt.Errorf("replacing client %d: %w", in.id, err))
				c.mu.Unlock()
			}
		}}, true
	case WaiterFreeze:
		in.mu.Lock()
		in.frozen = append(in.frozen, [2]time.Time{time.Now()})
		in.mu.Unlock()
		in.gate.Cut()
		return pendingHeal{at: span(4*c.cfg.NodeTimeout, 3*c.cfg.TTL), do: func() {
			in.gate.Mend()
			in.mu.Lock()
			in.frozen[len(in.frozen)-1][1] = time.Now()
			in.mu.Unlock()
		}}, true
	default:
		c.mu.Lock()
		c.errs = append(c.errs, fmt.Errorf("unknown waiter fault kind %q", kind))
		c.mu.Unlock()
		return pendingHeal{}, false
	}
}

// waiting returns the intervals during which some running client waited
// in Lock: each call's span, less the freezes of its client (a frozen
// client waits for nothing the others could give it).
func waiting(instances []*instance, calls []Call) [][2]time.Time {
	frozen := map[int][][2]time.Time{}
	for _, in := range instances {
		in.mu.Lock()
		frozen[in.id] = slices.Clone(in.frozen)
		in.mu.Unlock()
	}
	var out [][2]time.Time
	for _, call := range calls {
		out = append(out, subtract([2]time.Time{call.At, call.At.Add(call.Took)}, frozen[call.Client])...)
	}
	return out
}

// subtract returns iv less the windows.
func subtract(iv [2]time.Time, windows [][2]time.Time) [][2]time.Time {
	parts := [][2]time.Time{iv}
	for _, w := range windows {
		var next [][2]time.Time
		for _, p := range parts {
			if !w[0].Before(p[1]) || !p[0].Before(w[1]) { // disjoint
				next = append(next, p)
				continue
			}
			if p[0].Before(w[0]) {
				next = append(next, [2]time.Time{p[0], w[0]})
			}
			if w[1].Before(p[1]) {
				next = append(next, [2]time.Time{w[1], p[1]})
			}
		}
		parts = next
	}
	return parts
}

// waiting returns how many clients are inside Lock now.
func (c *contention) waiting() int { return int(c.inLock.Load()) }
