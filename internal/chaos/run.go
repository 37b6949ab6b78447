package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/quorum"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Config describes one chaos run.
type Config struct {
	Tier        string
	Nodes       []Node
	Proxies     bool          // route clients through a Proxy per node (latency; partitions in the process tier)
	Kinds       []string      // fault kinds to inject
	MaxFaulty   int           // 0: N-Q, the most the model allows
	InModel     bool          // whether the checkers' liveness and timing limits apply
	Duration    time.Duration // default 20s
	Workers     int           // default 8
	Names       int           // lock names contended for; default 3
	Clients     int           // clients (each with its own pools); default 2
	TTL         time.Duration // default 300ms
	NodeTimeout time.Duration // default 30ms
	Every       time.Duration // mean pause between faults; default 250ms
	Seed        uint64        // 0: random (printed in the summary)
	Limits      Limits        // zero fields get defaults
	// OnTick, if set, is called about every second with the progress.
	OnTick func(Progress)
	// Observer, if set, observes every client of the run (redlock.WithObserver).
	Observer redlock.Observer
}

// Progress is a live view of a run, for the demo's status line.
type Progress struct {
	Elapsed          time.Duration
	Acquisitions     int
	PerSecond        float64 // acquisitions in the last tick
	Waiting          int     // workers waiting for a lock now
	HandoversPerSec  float64 // acquisitions in the last tick by workers that waited for a holder
	P50, P99         time.Duration
	Faulty           map[string]int // nodes currently down, frozen, cut off or slow, by fault
	Nodes            int
	Overlaps         int
	StaleRejected    int
	StaleAccepted    int
	TokenRegressions int
}

func (c *Config) defaults() {
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Names == 0 {
		c.Names = 3
	}
	if c.Clients == 0 {
		c.Clients = 2
	}
	if c.TTL == 0 {
		c.TTL = 300 * time.Millisecond
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = 30 * time.Millisecond
	}
	if c.Every == 0 {
		c.Every = 250 * time.Millisecond
	}
	if c.MaxFaulty == 0 {
		c.MaxFaulty = len(c.Nodes) - quorum.Majority(len(c.Nodes))
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Limits.CallSlack == 0 {
		c.Limits.CallSlack = 500 * time.Millisecond
	}
	if c.Limits.MaxDrought == 0 {
		c.Limits.MaxDrought = 5 * time.Second
	}
	if c.Limits.MinAcquired == 0 {
		c.Limits.MinAcquired = 1
	}
}

// Run runs the workload under the fault schedule for cfg.Duration (or until
// ctx ends), heals every node, and returns what the checkers found.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.defaults()
	targets := make([]Target, len(cfg.Nodes))
	addrs := make([]string, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		targets[i].Node = n
		addrs[i] = n.Addr()
		if cfg.Proxies {
			p, err := NewProxy(n.Addr())
			if err != nil {
				return Summary{}, err
			}
			defer p.Close()
			targets[i].Link = p
			addrs[i] = p.Addr()
		}
	}
	clients := make([]*redlock.Client, cfg.Clients)
	for i := range clients {
		pools := make([]pool.Pool, len(addrs))
		for j, a := range addrs {
			pools[j] = pool.New(a, pool.WithMaxActive(64))
			defer pools[j].Close()
		}
		opts := []redlock.Option{redlock.WithTTL(cfg.TTL), redlock.WithNodeTimeout(cfg.NodeTimeout), redlock.WithFencing(),
			redlock.WithTries(1 << 30), redlock.WithRetryDelay(func(int) time.Duration { return time.Duration(2+rand.IntN(20)) * time.Millisecond })}
		if cfg.Observer != nil {
			opts = append(opts, redlock.WithObserver(cfg.Observer))
		}
		cl, err := redlock.New(pools, opts...)
		if err != nil {
			return Summary{}, fmt.Errorf("chaos: %w", err)
		}
		defer cl.Close()
		clients[i] = cl
	}
	names := make([]string, cfg.Names)
	for i := range names {
		names[i] = fmt.Sprintf("chaos-%d-%d", cfg.Seed%100000, i)
	}
	rec, res := &Recorder{}, NewResource()
	w := &Workload{Clients: clients, Names: names, Workers: cfg.Workers, Resource: res, Recorder: rec,
		TTL: cfg.TTL, NodeTimeout: cfg.NodeTimeout, LockTimeout: 2 * cfg.TTL, Seed: cfg.Seed}
	s := &Schedule{Targets: targets, Kinds: cfg.Kinds, MaxFaulty: cfg.MaxFaulty, TTL: cfg.TTL, Every: cfg.Every, Seed: cfg.Seed}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	from := time.Now()
	var wg sync.WaitGroup
	var faults map[string]int
	wg.Add(2)
	go func() { defer wg.Done(); faults = s.Run(runCtx) }()
	go func() { defer wg.Done(); w.Run(runCtx) }()
	if cfg.OnTick != nil {
		wg.Add(1)
		go func() { defer wg.Done(); tick(runCtx, from, len(cfg.Nodes), rec, res, s, w.Waiting, cfg.OnTick) }()
	}
	wg.Wait()
	to := time.Now()
	return Summarize(cfg.Tier, cfg.Seed, from, to, len(cfg.Nodes), cfg.Workers, cfg.Names, cfg.InModel,
		rec, res, faults, s.Errors(), s.MajorityDown(), cfg.Limits), nil
}

func tick(ctx context.Context, from time.Time, nodes int, rec *Recorder, res *Resource, s *Schedule, waiting func() int, f func(Progress)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastHolds, lastCalls := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		holds, calls := rec.Snapshot()
		var lat []time.Duration
		handovers := 0
		for _, c := range calls[lastCalls:] {
			if c.Acquired {
				lat = append(lat, c.Took)
				if c.Waited {
					handovers++
				}
			}
		}
		p := Progress{Elapsed: time.Since(from), Acquisitions: len(holds), PerSecond: float64(len(holds) - lastHolds),
			Waiting: waiting(), HandoversPerSec: float64(handovers),
			Faulty: s.Faulty(), Nodes: nodes, Overlaps: Overlaps(holds)}
		p.TokenRegressions, _ = TokenProblems(holds)
		_, p.StaleRejected, p.StaleAccepted = res.Counts()
		if len(lat) > 0 {
			slices.Sort(lat)
			p.P50, p.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
		}
		lastHolds, lastCalls = len(holds), len(calls)
		f(p)
	}
}
