package main

// The semaphore suite: the instances suite's set-up (one OS process per
// service instance, see instances.go) on a semaphore: 16 instances take one
// of K = 4 permits, hold it 5 ms, give it back and ask again at once. It
// reports acquisitions per second, the wait for a permit, and the most
// permits seen held at once (from the instances' own clocks: never more
// than K), with the lock (K = 1) under the same load beside it.
//
//	go run . -suite semaphore -rounds 3

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

const (
	semPermits   = 4
	semInstances = 16
	semHold      = 5 * time.Millisecond
)

// semLocker is quorumlock's semaphore as one instance uses it: a permit of
// the semaphore named key.
type semLocker struct {
	*qlockWait
	permits int
	mu      sync.Mutex
	sems    map[string]*redlock.Semaphore
}

// newLocker builds the client a worker uses: cfg.Lib's lock, or with
// cfg.Permits quorumlock's semaphore.
func newLocker(cfg workerConfig) (waitLocker, error) {
	if cfg.Lib == ring {
		return newFloorRing(cfg)
	}
	if cfg.Permits == 0 {
		return newWaitLocker(cfg.Lib, cfg.Addrs)
	}
	q, err := newQuorumlockWait(cfg.Addrs)
	if err != nil {
		return nil, err
	}
	return &semLocker{qlockWait: q, permits: cfg.Permits, sems: map[string]*redlock.Semaphore{}}, nil
}

func (s *semLocker) name() string { return fmt.Sprintf("quorumlock semaphore K=%d", s.permits) }

func (s *semLocker) lock(ctx context.Context, key string) (func() error, error) {
	return s.acquire(ctx, key, true)
}

func (s *semLocker) tryLock(ctx context.Context, key string) (func() error, error) {
	return s.acquire(ctx, key, false)
}

func (s *semLocker) acquire(ctx context.Context, key string, wait bool) (func() error, error) {
	s.mu.Lock()
	sem := s.sems[key]
	if sem == nil {
		var err error
		if sem, err = s.client.Semaphore(key, s.permits); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.sems[key] = sem
	}
	s.mu.Unlock()
	var l *redlock.Lock
	var err error
	if wait {
		l, err = sem.Acquire(ctx)
	} else {
		l, err = sem.TryAcquire(ctx)
	}
	if err != nil {
		return nil, err
	}
	return func() error { return l.Unlock(context.Background()) }, nil
}

// semRun is one run's figures.
type semRun struct {
	instRun
	maxHeld int // the most [acquired, release called] intervals that overlap
}

// maxHolders sweeps the workers' hold intervals [got, rel]; a release
// counts before an acquisition at the same instant.
func maxHolders(ws []workerResult) int {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, w := range ws {
		for _, a := range w.Acq {
			edges = append(edges, edge{a[1], 1}, edge{a[2], -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Or(cmp.Compare(a.at, b.at), a.delta-b.delta) })
	most, n := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}

func runSemaphoreSuite(rounds int, out string, quick bool) error {
	p := instPlan{dur: 5 * time.Second, warm: time.Second}
	if quick {
		p = instPlan{dur: 1500 * time.Millisecond, warm: 500 * time.Millisecond}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to re-execute: %w", err)
	}
	c, err := redistest.Start(5)
	if err != nil {
		return err
	}
	defer c.Close()
	kinds := []int{semPermits, 1} // the semaphore, and the lock (K = 1) beside it
	runs := map[int][]semRun{}
	fmt.Printf("bench: semaphore suite, %d rounds, %d instances, hold %v, runs of %v (first %v not measured)\n", rounds, semInstances, semHold, p.dur, p.warm)
	for r := range rounds {
		for _, k := range rotateInts(kinds, r) {
			cfg := workerConfig{Lib: q, Addrs: c.Addrs(), Hold: semHold, Duration: p.dur,
				Key: fmt.Sprintf("bench:sem:k%d:r%d:%d", k, r, time.Now().UnixNano())}
			if k > 1 {
				cfg.Permits = k
			}
			ws, start, err := runWorkers(exe, cfg, semInstances)
			if err != nil {
				return fmt.Errorf("K=%d: %w", k, err)
			}
			f := semRun{instFigures(ws, start.Add(p.warm), start.Add(p.dur)), maxHolders(ws)}
			runs[k] = append(runs[k], f)
			fmt.Printf("  round %d, K=%d: %6.0f acq/s, wait p50/p99 %7.2f/%8.2f ms, most held at once %d, Jain %.3f, gave up %d\n",
				r+1, k, f.perSec, ms(f.waitP50), ms(f.waitP99), f.maxHeld, f.jain, f.gaveUp)
		}
	}
	section := semReport(runs, kinds, rounds, quick)
	fmt.Print(section)
	return os.WriteFile(out, []byte(section), 0o644)
}

func rotateInts(xs []int, r int) []int {
	out := slices.Clone(xs)
	if len(out) > 0 {
		k := r % len(out)
		out = append(out[k:], out[:k]...)
	}
	return out
}

// semReport is the suite's results file: medians over the rounds.
func semReport(runs map[int][]semRun, kinds []int, rounds int, quick bool) string {
	var b strings.Builder
	b.WriteString("# Semaphore benchmark\n\n")
	fmt.Fprintf(&b, "`go run . -suite semaphore -rounds %d`%s: five local redis-server nodes, %d instances (separate processes, one client each) that each take a permit, hold it %v, give it back and ask again at once; medians over %d rounds, the first second of each run not measured. The lock (K = 1) runs under the same load for comparison. \"Most held\" is the most hold intervals that overlapped, on the instances' own clocks.\n\n",
		rounds, map[bool]string{true: " -quick", false: ""}[quick], semInstances, semHold, rounds)
	b.WriteString("| | acquisitions/s | wait p50 (ms) | wait p99 (ms) | most held at once | Jain | gave up |\n|---|---|---|---|---|---|---|\n")
	for _, k := range kinds {
		rs := runs[k]
		med := func(f func(semRun) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			slices.Sort(xs)
			return xs[len(xs)/2]
		}
		most, gave := 0, 0
		for _, r := range rs {
			most, gave = max(most, r.maxHeld), gave+r.gaveUp
		}
		label := fmt.Sprintf("semaphore K=%d", k)
		if k == 1 {
			label = "lock (K=1)"
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %d | %.3f | %d |\n", label,
			med(func(r semRun) float64 { return r.perSec }), med(func(r semRun) float64 { return ms(r.waitP50) }),
			med(func(r semRun) float64 { return ms(r.waitP99) }), most, med(func(r semRun) float64 { return r.jain }), gave)
	}
	return b.String()
}
