package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// latencies runs n lock+unlock pairs on one goroutine and returns each
// pair's duration, with the allocations and bytes per pair.
func latencies(l locker, key string, n int) (lat []time.Duration, allocs, bytes float64, err error) {
	ctx := context.Background()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	lat = make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		unlock, err := l.lock(ctx, key, false)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%s lock: %w", l.name(), err)
		}
		if err := unlock(); err != nil {
			return nil, 0, 0, fmt.Errorf("%s unlock: %w", l.name(), err)
		}
		lat = append(lat, time.Since(start))
	}
	runtime.ReadMemStats(&m1)
	return lat, float64(m1.Mallocs-m0.Mallocs) / float64(n), float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n), nil
}

// throughput runs g goroutines taking and releasing random keys among
// keys for d; it returns lock+unlock pairs per second, client CPU per pair,
// and allocations per pair. A key already taken counts as a refusal.
func throughput(l locker, g, keys int, d time.Duration) (perSec float64, cpuPerOp time.Duration, allocs float64, refused int64) {
	ctx := context.Background()
	var ops, refusals atomic.Int64
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for time.Now().Before(stop) {
				key := fmt.Sprintf("bench:tp:%d", rng.IntN(keys))
				unlock, err := l.lock(ctx, key, false)
				if err != nil {
					refusals.Add(1)
					continue
				}
				unlock()
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	n := ops.Load()
	return float64(n) / el.Seconds(), cpu / time.Duration(max(n, 1)), float64(m1.Mallocs-m0.Mallocs) / float64(max(n, 1)), refusals.Load()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// contention: workers share one key; each takes it (waiting), releases it
// at once, works 2 ms, and asks again, for d.
type contentionResult struct {
	perSec   float64
	waits    []time.Duration // calling Lock to holding it
	handoffs []time.Duration // a release to the next acquisition
	longest  time.Duration   // the longest single wait (starvation)
	failures int64
}

func contention(l locker, workers int, key string, d time.Duration) contentionResult {
	ctx := context.Background()
	var mu sync.Mutex
	var res contentionResult
	var lastRelease atomic.Int64 // ns since start; 0 when none pending
	start := time.Now()
	stop := start.Add(d)
	var ops, fails atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				asked := time.Now()
				unlock, err := l.lock(ctx, key, true)
				if err != nil {
					fails.Add(1)
					continue
				}
				got := time.Now()
				rel := lastRelease.Swap(0)
				unlock()
				lastRelease.Store(int64(time.Since(start)))
				ops.Add(1)
				mu.Lock()
				res.waits = append(res.waits, got.Sub(asked))
				if rel > 0 {
					res.handoffs = append(res.handoffs, got.Sub(start.Add(time.Duration(rel))))
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	res.perSec = float64(ops.Load()) / time.Since(start).Seconds()
	res.failures = fails.Load()
	for _, w := range res.waits {
		res.longest = max(res.longest, w)
	}
	return res
}

// pct returns the p-th percentile (0-100) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
