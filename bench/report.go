package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// results accumulates per-round figures; the report takes medians.
type results struct {
	lat      map[string]*series // healthy, one goroutine
	frozenL  map[string]*series // one node frozen
	tp       map[string]*scalar
	cont     map[string]*contSeries
	mem      memResult
	allLat   map[string][]time.Duration // every sample, for the chart
	allFroze map[string][]time.Duration
}

type series struct{ p50, p99, allocs, bytes []float64 }
type scalar struct{ perSec, cpuUs, allocs []float64 }
type contSeries struct {
	perSec, waitP50, waitP99, handP50, handP99, longest []float64
	failures                                            int64
}

func newResults() *results {
	return &results{lat: map[string]*series{}, frozenL: map[string]*series{}, tp: map[string]*scalar{},
		cont: map[string]*contSeries{}, allLat: map[string][]time.Duration{}, allFroze: map[string][]time.Duration{}}
}

func get[T any](m map[string]*T, k string) *T {
	if m[k] == nil {
		m[k] = new(T)
	}
	return m[k]
}

func (r *results) latency(lib string, lat []time.Duration, allocs, bytes float64) {
	s := get(r.lat, lib)
	s.p50 = append(s.p50, ms(pct(lat, 50)))
	s.p99 = append(s.p99, ms(pct(lat, 99)))
	s.allocs = append(s.allocs, allocs)
	s.bytes = append(s.bytes, bytes)
	r.allLat[lib] = append(r.allLat[lib], lat...)
}

func (r *results) frozen(lib string, lat []time.Duration) {
	s := get(r.frozenL, lib)
	s.p50 = append(s.p50, ms(pct(lat, 50)))
	s.p99 = append(s.p99, ms(pct(lat, 99)))
	r.allFroze[lib] = append(r.allFroze[lib], lat...)
}

func (r *results) throughput(lib string, perSec float64, cpu time.Duration, allocs float64) {
	s := get(r.tp, lib)
	s.perSec = append(s.perSec, perSec)
	s.cpuUs = append(s.cpuUs, float64(cpu.Nanoseconds())/1000)
	s.allocs = append(s.allocs, allocs)
}

func (r *results) contention(lib string, c contentionResult) {
	s := get(r.cont, lib)
	s.perSec = append(s.perSec, c.perSec)
	s.waitP50 = append(s.waitP50, ms(pct(c.waits, 50)))
	s.waitP99 = append(s.waitP99, ms(pct(c.waits, 99)))
	s.handP50 = append(s.handP50, ms(pct(c.handoffs, 50)))
	s.handP99 = append(s.handP99, ms(pct(c.handoffs, 99)))
	s.longest = append(s.longest, ms(c.longest))
	s.failures += c.failures
}

const (
	q  = "quorumlock"
	rs = "redsync"
	fl = "raw floor"
)

func (r *results) report(rounds int, quick bool) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("# Benchmark results\n\n")
	if quick {
		w("**Quick run (`-quick`): short durations, not figures to publish.**\n\n")
	}
	w("Measured by `make bench` (`bench/`, its own module) on %s: %d cores (`GOMAXPROCS` %d), %s, %s; five local redis-server processes; redigo pools with %v dial/read/write timeouts for every library; default options otherwise (quorumlock: node timeout 50ms; redsync v4.18.1: 32 tries, 50-250ms retry delay). Each of the %d rounds runs every figure for every library, the order rotating; the table gives medians over the rounds, ratios are quorumlock / other.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), redisVersion(), timeout, rounds)
	lat := func(lib string, f func(*series) []float64) float64 { return median(f(get(r.lat, lib))) }
	p50 := func(s *series) []float64 { return s.p50 }
	p99 := func(s *series) []float64 { return s.p99 }
	allocs := func(s *series) []float64 { return s.allocs }
	bytesF := func(s *series) []float64 { return s.bytes }
	ok := func(b bool) string {
		if b {
			return "met"
		}
		return "**not met**"
	}
	w("| figure | quorumlock | redsync | raw floor | ratio | target | |\n|---|---|---|---|---|---|---|\n")
	qp50, rp50, fp50 := lat(q, p50), lat(rs, p50), lat(fl, p50)
	w("| Lock+Unlock, 1 goroutine, p50 (ms) | %.3f | %.3f | %.3f | %.2fx floor, %.2fx redsync | <= 1.1x floor, <= 0.9x redsync | %s |\n",
		qp50, rp50, fp50, qp50/fp50, qp50/rp50, ok(qp50 <= 1.1*fp50 && qp50 <= 0.9*rp50))
	qp99, rp99, fp99 := lat(q, p99), lat(rs, p99), lat(fl, p99)
	w("| Lock+Unlock, 1 goroutine, p99 (ms) | %.3f | %.3f | %.3f | %.2fx redsync | | |\n", qp99, rp99, fp99, qp99/rp99)
	qa, ra := lat(q, allocs), lat(rs, allocs)
	w("| allocations per Lock+Unlock | %.0f | %.0f | %.0f | %.2fx | <= 1/3 redsync's (%.0f) | %s |\n", qa, ra, lat(fl, allocs), qa/ra, ra/3, ok(qa <= ra/3))
	w("| bytes per Lock+Unlock | %.0f | %.0f | %.0f | %.2fx | | |\n", lat(q, bytesF), lat(rs, bytesF), lat(fl, bytesF), lat(q, bytesF)/lat(rs, bytesF))
	tp := func(lib string) *scalar { return get(r.tp, lib) }
	qt, rt, ft := median(tp(q).perSec), median(tp(rs).perSec), median(tp(fl).perSec)
	w("| 64 goroutines on 10,000 keys (lock+unlock/s) | %.0f | %.0f | %.0f | %.2fx redsync | >= 2x redsync | %s |\n", qt, rt, ft, qt/rt, ok(qt >= 2*rt))
	w("| client CPU per lock+unlock there (us) | %.0f | %.0f | %.0f | %.2fx | | |\n", median(tp(q).cpuUs), median(tp(rs).cpuUs), median(tp(fl).cpuUs), median(tp(q).cpuUs)/median(tp(rs).cpuUs))
	w("| allocations per lock+unlock there | %.0f | %.0f | %.0f | %.2fx | | |\n", median(tp(q).allocs), median(tp(rs).allocs), median(tp(fl).allocs), median(tp(q).allocs)/median(tp(rs).allocs))
	fz := func(lib string, f func(*series) []float64) float64 { return median(f(get(r.frozenL, lib))) }
	w("| one node frozen: Lock+Unlock p50 (ms) | %.3f | %.3f | | %.2fx redsync | | |\n", fz(q, p50), fz(rs, p50), fz(q, p50)/fz(rs, p50))
	w("| one node frozen: Lock+Unlock p99 (ms) | %.3f | %.3f | | %.2fx own healthy p99 | <= 2x healthy p99 | %s |\n", fz(q, p99), fz(rs, p99), fz(q, p99)/qp99, ok(fz(q, p99) <= 2*qp99))
	cs := func(lib string) *contSeries { return get(r.cont, lib) }
	qc, rc := median(cs(q).perSec), median(cs(rs).perSec)
	w("| 16 workers, one key (acquisitions/s) | %.0f | %.0f | | %.2fx | >= 2x redsync | %s |\n", qc, rc, qc/rc, ok(qc >= 2*rc))
	qw, rw := median(cs(q).waitP99), median(cs(rs).waitP99)
	w("| 16 workers: waiter's wait p50 / p99 (ms) | %.2f / %.2f | %.2f / %.2f | | p99 %.3fx | p99 <= 1/10 redsync's | %s |\n", median(cs(q).waitP50), qw, median(cs(rs).waitP50), rw, qw/rw, ok(qw <= rw/10))
	w("| 16 workers: handoff, release to next acquisition p50 / p99 (ms) | %.2f / %.2f | %.2f / %.2f | | | | |\n", median(cs(q).handP50), median(cs(q).handP99), median(cs(rs).handP50), median(cs(rs).handP99))
	w("| 16 workers: longest wait of any waiter (ms) | %.0f | %.0f | | | | |\n", median(cs(q).longest), median(cs(rs).longest))
	w("| 16 workers: Lock calls that gave up | %d | %d | | | | |\n", cs(q).failures, cs(rs).failures)
	m := r.mem
	w("\nMemory: a client holding %d locks with auto-extension (TTL 3s, extended about every second): **%.0f bytes per held lock** (heap and goroutine stacks, after GC), %d goroutines more than before (one scheduler per client, no goroutine per lock); while held, %d extension requests were written at **%.1f requests per write** (concurrent extensions batched per node by the pipeline); %d locks lost.\n",
		m.locks, m.bytesPerLock, m.goroutines, m.extended, m.requestsPerWrite, m.lost)
	w("\n![latency distribution](latency.png)\n")
	return b.String()
}

func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "redis-server ?"
	}
	f := strings.Fields(string(out))
	for _, x := range f {
		if strings.HasPrefix(x, "v=") {
			return "Redis " + strings.TrimPrefix(x, "v=")
		}
	}
	return strings.TrimSpace(string(out))
}
