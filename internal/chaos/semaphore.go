package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Sem is the semaphore workload (ALGORITHM.md S1-S5): Clients separate
// clients, each with its own pools behind its own proxy per node, one
// worker each, all contending for the Permits permits of one semaphore
// with fencing on, while the fault schedule hurts the nodes and link cuts
// cut single clients off from single nodes (at most N-Q of them per client
// at once). The link cuts are what make nodes disagree about who holds
// what, which is where a wrong construction gives out too many permits.
type Sem struct {
	Permits int // K; default 2
	Clients int // default 4K, more contenders than permits
	// LinkEvery is the longest pause between two splits of the clients'
	// views (see linkCuts); default 100ms. Negative: no splits.
	// Negative: no link cuts.
	LinkEvery time.Duration
	// LockBudget is the context budget of one Acquire call; default 20 TTL.
	LockBudget time.Duration
}

func (sm *Sem) defaults(cfg *Config) {
	if sm.Permits == 0 {
		sm.Permits = 2
	}
	if sm.Clients == 0 {
		sm.Clients = 4 * sm.Permits
	}
	if sm.LinkEvery == 0 {
		sm.LinkEvery = 100 * time.Millisecond
	}
	if sm.LockBudget == 0 {
		sm.LockBudget = 20 * cfg.TTL
	}
}

// SemHold is one permit as its holder saw it.
type SemHold struct {
	Called time.Time // Acquire was called
	Start  time.Time // Acquire returned
	End    time.Time // min(Unlock called, Until())
	Token  uint64
}

// semRun is one semaphore run in progress.
type semRun struct {
	cfg   Config
	sm    Sem
	name  string
	rec   *Recorder
	links [][]*Proxy // per client, per node

	mu    sync.Mutex
	holds []SemHold
	cuts  int
}

// RunSemaphore runs the semaphore workload under the node fault schedule
// of cfg for cfg.Duration (or until ctx ends), heals everything, and
// returns what the checkers found: more holders at once than permits
// (S1), a token not above that of a permit acquired before the call began
// (S5), besides the usual liveness limits for in-model runs.
// cfg.Workers, cfg.Names, cfg.Clients and cfg.Proxies are not used.
func RunSemaphore(ctx context.Context, cfg Config, sm Sem) (Summary, error) {
	cfg.defaults()
	sm.defaults(&cfg)
	r := &semRun{cfg: cfg, sm: sm, name: fmt.Sprintf("sem-%d", cfg.Seed%100000), rec: &Recorder{}}
	targets := make([]Target, len(cfg.Nodes))
	gates := make([]*Gate, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		gates[i] = &Gate{}
		targets[i] = Target{Node: n, Link: gates[i]}
	}
	sems := make([]*redlock.Semaphore, sm.Clients)
	for i := range sems {
		var pools []pool.Pool
		var links []*Proxy
		for j, n := range cfg.Nodes {
			p, err := NewProxy(n.Addr(), gates[j])
			if err != nil {
				return Summary{}, fmt.Errorf("chaos: %w", err)
			}
			defer p.Close()
			pl := pool.New(p.Addr())
			defer pl.Close()
			links, pools = append(links, p), append(pools, pl)
		}
		r.links = append(r.links, links)
		cl, err := redlock.New(pools, redlock.WithTTL(cfg.TTL), redlock.WithNodeTimeout(cfg.NodeTimeout),
			redlock.WithFencing(), redlock.WithTries(1<<30))
		if err != nil {
			return Summary{}, fmt.Errorf("chaos: %w", err)
		}
		defer cl.Close() // before its pools and proxies
		if sems[i], err = cl.Semaphore(r.name, sm.Permits); err != nil {
			return Summary{}, fmt.Errorf("chaos: %w", err)
		}
	}
	s := &Schedule{Targets: targets, Kinds: cfg.Kinds, MaxFaulty: cfg.MaxFaulty, TTL: cfg.TTL, Every: cfg.Every, Seed: cfg.Seed}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	from := time.Now()
	var faults map[string]int
	var wg sync.WaitGroup
	wg.Go(func() { faults = s.Run(runCtx) })
	if sm.LinkEvery > 0 {
		wg.Go(func() { r.linkCuts(runCtx) })
	}
	for i, sem := range sems {
		wg.Go(func() { r.worker(runCtx, i, sem) })
	}
	wg.Wait()
	to := time.Now()
	r.mu.Lock()
	holds := slices.Clone(r.holds)
	faults["link-cut"] = r.cuts
	r.mu.Unlock()
	sum := Summarize(cfg.Tier, cfg.Seed, from, to, len(cfg.Nodes), sm.Clients, 1, cfg.InModel,
		r.rec, NewResource(), faults, s.Errors(), s.MajorityDown(), cfg.Limits)
	sum.Permits = sm.Permits
	sum.MaxHolders = MaxHolders(holds)
	sum.TokenRegressions = TokenOrder(holds)
	if sum.MaxHolders > sm.Permits {
		sum.Violations = append(sum.Violations, fmt.Sprintf("%d holders at once with %d permits", sum.MaxHolders, sm.Permits))
	}
	if sum.TokenRegressions > 0 {
		sum.Violations = append(sum.Violations, fmt.Sprintf("%d tokens not above a permit acquired before their call", sum.TokenRegressions))
	}
	return sum, nil
}

// worker loops: Acquire with a budget, hold a random time (one hold in
// eight auto-extended past the TTL), Unlock, a short pause.
func (r *semRun) worker(ctx context.Context, id int, sem *redlock.Semaphore) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(id)+2<<32))
	for ctx.Err() == nil {
		var opts []redlock.Option
		length := time.Duration(rng.Int64N(int64(r.cfg.TTL)))
		if rng.IntN(8) == 0 {
			opts = append(opts, redlock.WithAutoExtend())
			length = r.cfg.TTL + time.Duration(rng.Int64N(int64(r.cfg.TTL)))
		}
		lctx, cancel := context.WithTimeout(ctx, r.sm.LockBudget)
		at := time.Now()
		l, err := sem.Acquire(lctx, opts...)
		took := time.Since(at)
		cancel()
		budget := r.sm.LockBudget
		if ctx.Err() != nil { // the run ended the call, not its budget
			budget = 0
		}
		r.rec.AddCall(Call{At: at, Took: took, Budget: budget, Acquired: err == nil, Err: err, Client: id})
		if err != nil {
			continue
		}
		r.hold(ctx, l, at, length)
		select {
		case <-time.After(time.Duration(rng.Int64N(int64(r.cfg.TTL / 10)))):
		case <-ctx.Done():
		}
	}
}

// hold keeps the permit for length, or until Until() or its loss (the
// holder's discipline), then gives it back.
func (r *semRun) hold(ctx context.Context, l *redlock.Lock, called time.Time, length time.Duration) {
	start := time.Now()
	stop := start.Add(length)
	for time.Now().Before(stop) && ctx.Err() == nil && l.Err() == nil && time.Now().Before(l.Until()) {
		time.Sleep(2 * time.Millisecond)
	}
	end := time.Now()
	if u := l.Until(); u.Before(end) {
		end = u
	}
	l.Unlock(context.WithoutCancel(ctx))
	r.mu.Lock()
	seq := len(r.holds)
	r.holds = append(r.holds, SemHold{Called: called, Start: start, End: end, Token: l.Token()})
	r.mu.Unlock()
	// Each permit under a name of its own: the lock's checkers (overlaps,
	// token order per name) do not apply to K holders; MaxHolders and
	// TokenOrder do.
	r.rec.AddHold(Hold{Name: fmt.Sprintf("%s/%d", r.name, seq), Token: l.Token(), Start: start, End: end})
}

// linkCuts splits the clients' views of the nodes, one split after the
// other: for 2 to 6 TTL, a third of the clients is cut off from two nodes
// and another third from two others (never more than N-Q nodes per
// client), then, after up to LinkEvery, the next split. Each cut-off client
// takes its permits from the nodes it sees, so that the nodes disagree
// about who holds what: where counting holders per node lets more than K
// hold (S1).
func (r *semRun) linkCuts(ctx context.Context) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x11c7))
	n := len(r.cfg.Nodes)
	width := min(r.cfg.MaxFaulty, n/2) // nodes per group: two groups on disjoint nodes
	if width == 0 {
		return
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for sleep(time.Duration(rng.Int64N(int64(r.sm.LinkEvery) + 1))) {
		nodes, clients := rng.Perm(n), rng.Perm(len(r.links))
		third := max(1, len(clients)/3)
		var cut [][2]int // client, node
		for g := range 2 {
			for _, c := range clients[g*third : (g+1)*third] {
				for _, j := range nodes[g*width : (g+1)*width] {
					r.links[c][j].Cut()
					cut = append(cut, [2]int{c, j})
				}
			}
		}
		r.mu.Lock()
		r.cuts += len(cut)
		r.mu.Unlock()
		sleep(2*r.cfg.TTL + time.Duration(rng.Int64N(int64(4*r.cfg.TTL))))
		for _, cj := range cut {
			r.links[cj[0]][cj[1]].Mend()
		}
	}
}

// MaxHolders returns the most permits held at one instant: a sweep over
// the hold intervals, an end counted before a start at the same instant.
func MaxHolders(holds []SemHold) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(holds))
	for _, h := range holds {
		if h.Start.Before(h.End) {
			edges = append(edges, edge{h.Start, 1}, edge{h.End, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	most, n := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// TokenOrder counts the permits whose token is not above that of every
// permit acquired before their Acquire call began (S5). Holds without a
// token are skipped.
func TokenOrder(holds []SemHold) int {
	byStart := slices.Clone(holds)
	slices.SortFunc(byStart, func(a, b SemHold) int { return a.Start.Compare(b.Start) })
	prefix := make([]uint64, len(byStart)) // the largest token among byStart[:i+1]
	var top uint64
	for i, h := range byStart {
		top = max(top, h.Token)
		prefix[i] = top
	}
	bad := 0
	for _, b := range holds {
		if b.Token == 0 {
			continue
		}
		// The permits acquired strictly before b's call.
		i, _ := slices.BinarySearchFunc(byStart, b.Called, func(h SemHold, t time.Time) int {
			if h.Start.Before(t) {
				return -1
			}
			return 1
		})
		if i > 0 && b.Token <= prefix[i-1] {
			bad++
		}
	}
	return bad
}
