package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

type instKey struct {
	n       int
	sc, lib string
}

// instResults accumulates the instances suite's runs; the report takes
// medians over the rounds.
type instResults struct {
	plan      instPlan
	runs      map[instKey][]instRun
	tryP50    map[string][]float64 // ms, per round
	tryP99    map[string][]float64
	tryFailed map[string]int // attempts or releases that failed, all rounds
	elapsed   time.Duration
	nRuns     int
}

func newInstResults(p instPlan) *instResults {
	return &instResults{plan: p, runs: map[instKey][]instRun{}, tryP50: map[string][]float64{}, tryP99: map[string][]float64{}, tryFailed: map[string]int{}}
}

func (r *instResults) add(k instKey, f instRun) {
	r.runs[k] = append(r.runs[k], f)
	r.nRuns++
}

func (r *instResults) try(lib string, lat []time.Duration, failed int) {
	r.tryP50[lib] = append(r.tryP50[lib], ms(pct(lat, 50)))
	r.tryP99[lib] = append(r.tryP99[lib], ms(pct(lat, 99)))
	r.tryFailed[lib] += failed
}

// med is the median over the rounds of one figure of k's runs.
func (r *instResults) med(k instKey, f func(instRun) float64) float64 {
	var xs []float64
	for _, run := range r.runs[k] {
		if x := f(run); !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return math.NaN()
	}
	return median(xs)
}

// num formats x, or "-" when there is no such figure.
func num(format string, x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf(format, x)
}

func (r *instResults) sum(k instKey, f func(instRun) int) int {
	n := 0
	for _, run := range r.runs[k] {
		n += f(run)
	}
	return n
}

// The markers around the instances suite's section of RESULTS.md: each
// suite rewrites only its own part of the file.
const (
	instBegin = "<!-- instances suite: begin (go run . -suite instances) -->"
	instEnd   = "<!-- instances suite: end -->"
)

var (
	perSecF  = func(f instRun) float64 { return f.perSec }
	heldF    = func(f instRun) float64 { return 100 * f.held }
	waitP50F = func(f instRun) float64 { return noneIf(f.acqs == 0, ms(f.waitP50)) }
	waitP99F = func(f instRun) float64 { return noneIf(f.acqs == 0, ms(f.waitP99)) }
	handP50F = func(f instRun) float64 { return noneIf(f.hands == 0, ms(f.handP50)) }
	handP99F = func(f instRun) float64 { return noneIf(f.hands == 0, ms(f.handP99)) }
	longestF = func(f instRun) float64 { return ms(f.longest) }
	sameF    = func(f instRun) float64 { return 100 * f.same }
	jainF    = func(f instRun) float64 { return f.jain }
	minMeanF = func(f instRun) float64 { return f.minMean }
)

// noneIf is x, or NaN (no figure: a run without handovers) when none.
func noneIf(none bool, x float64) float64 {
	if none {
		return math.NaN()
	}
	return x
}

func (r *instResults) report(rounds int, quick bool, cdf string) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("%s\n\n## Contention across service instances\n\n", instBegin)
	if quick {
		w("**Quick run (`-quick`): short durations, not figures to publish.**\n\n")
	}
	w("Measured by `go run . -suite instances -rounds %d` (in `bench/`) on %s: %d cores, %s, %s, local redis-server processes. "+
		"Every instance is a separate OS process (the bench binary re-executed) with its own client and connections, and all of them contend for one lock name, a fresh one per run. "+
		"Each instance loops: blocking acquire, hold, release, other work (a sleep). "+
		"A run lasts %v, of which the first %v is not measured; the instances start at one wall-clock instant, once every one has connected. "+
		"Each of the %d rounds runs every scenario for every library, the order rotating; the tables give medians over the rounds (gave up: the sum), ratios are quorumlock / other from this run's medians. "+
		"The whole suite (%d runs) took %.1f minutes.\n\n",
		rounds, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), redisVersion(),
		r.plan.dur, r.plan.warm, rounds, r.nRuns, r.elapsed.Minutes())
	w("Libraries, each with its default options but: **quorumlock** (this checkout): `WithTries(%d)`, pools with %v dial/read/write timeouts; "+
		"**redsync** %s: `WithTries(%d)` (retry delay 50-250 ms), redigo pools with %v timeouts; "+
		"**bsm/redislock** %s on go-redis %s (%v timeouts): `ExponentialBackoff(%v, %v)` (the minimum its documentation recommends; the cap near the others' 250 ms), TTL %v; "+
		"**rueidislock** (rueidis %s): `KeyMajority: 1, NoLoopTracking: true` as its README says for one Redis 7.0.5+ node, %v dial timeout; it wakes its waiters by client-side caching invalidations, quorumlock by pub/sub, redsync and redislock poll. "+
		"Every blocking acquire gets a context that ends with the run. redislock and rueidislock take one node only. "+
		"**hand-over floor** is not a lock: the instances pass a token round a ring, a release PUBLISHing it on every node on the next instance's own channel and the next instance taking it once a quorum of those messages reached it (`instfloor.go`): one message hop per hand-over, no script, no joining a line, no exclusion under faults. "+
		"It is the fastest a fair hand-over across these processes can be on this machine, measured in the same rounds: what a lock's figures lack against it is the lock's own cost, and a target it misses is out of reach here.\n\n",
		manyTries, timeout, modVersion("github.com/go-redsync/redsync/v4"), manyTries, timeout,
		modVersion("github.com/bsm/redislock"), modVersion("github.com/redis/go-redis/v9"), timeout, redislockMin, redislockMax, redislockTTL,
		modVersion("github.com/redis/rueidis"), timeout)
	w("Figures, over the measured window: **acq/s**, acquisitions returned in it per second; **held**, the share of it covered by the union of every instance's [acquire returned, release called] (the acquire's and the release's own round trips are not in it, though the key is on the nodes then); " +
		"**wait**, from calling acquire to its return with the lock; **handover**, from one instance calling release to the next acquisition returned in another instance (an instance taking the lock again right after itself counts under **same again** instead); " +
		"**Jain**, Jain's fairness index over the instances' acquisition counts, (sum x)^2 / (n sum x^2), 1 when all are equal; **least/mean**, the least served instance's count over the mean; " +
		"**longest**, the longest wait, counting a call still waiting when the run ended; **gave up**, acquire calls that returned an error before the run's end (the unmeasured first part of the run included).\n\n")
	for _, s := range nodeSets {
		if s.n == 1 {
			w("### One node: quorumlock, redsync, redislock, rueidislock\n\n")
		} else {
			w("### %d nodes: quorumlock and redsync\n\n", s.n)
		}
		for _, sc := range scenarios {
			r.table(&b, s, sc)
		}
	}
	w("### One attempt, uncontended (one node, one goroutine, in process)\n\n")
	w("| library | TryLock+Unlock p50 (ms) | p99 (ms) | p50: quorumlock / library | failed |\n|---|---|---|---|---|\n")
	qp := median(r.tryP50[q])
	for _, lib := range tryLibs() {
		p50 := median(r.tryP50[lib])
		w("| %s | %.3f | %.3f | %s | %d |\n", lib, p50, median(r.tryP99[lib]), ratio(qp, p50, lib), r.tryFailed[lib])
	}
	w("\n%d acquire+release pairs per library per round, on one goroutine, medians over the rounds; failed: pairs whose attempt or release failed (a node timeout on a loaded machine), not timed, all rounds. "+
		"quorumlock: `TryLock`, `Unlock`; redsync: `TryLockContext`, `UnlockContext`; redislock: `Obtain` without retry, `Release`; rueidislock: `TryWithContext`, its cancel function.\n\n", r.plan.tryN)
	w("![wait distribution, 16 instances](%s)\n\n%s\n", cdf, instEnd)
	return b.String()
}

func ratio(a, b float64, lib string) string {
	if lib == q || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func (r *instResults) table(b *strings.Builder, s nodeSet, sc scenario) {
	w := func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
	w("**(%s) %s**, %d node(s)\n\n", sc.id, sc.title, s.n)
	w("| library | acq/s | held | wait p50 / p99 (ms) | handover p50 / p99 (ms) | same again | Jain | least/mean | longest (ms) | gave up |\n|---|---|---|---|---|---|---|---|---|---|\n")
	var notes []string
	for _, lib := range s.libs {
		k := instKey{s.n, sc.id, lib}
		w("| %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %d |\n", lib,
			num("%.0f", r.med(k, perSecF)), num("%.2f%%", r.med(k, heldF)), num("%.2f", r.med(k, waitP50F)), num("%.2f", r.med(k, waitP99F)),
			num("%.2f", r.med(k, handP50F)), num("%.2f", r.med(k, handP99F)), num("%.1f%%", r.med(k, sameF)), num("%.3f", r.med(k, jainF)),
			num("%.2f", r.med(k, minMeanF)), num("%.0f", r.med(k, longestF)), r.sum(k, func(f instRun) int { return f.gaveUp }))
		if n := r.sum(k, func(f instRun) int { return f.overlaps }); n > 0 {
			notes = append(notes, fmt.Sprintf("**%s: %d acquisitions returned before the previous holder called release (overlapping holds)**", lib, n))
		}
		if n := r.sum(k, func(f instRun) int { return f.stuck }); n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d acquire calls were still waiting when a run ended, after more than 1 s (all rounds)", lib, n))
		}
		if n := r.sum(k, func(f instRun) int { return f.unlockErrs }); n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d releases failed", lib, n))
		}
		var errs []string
		for _, run := range r.runs[k] {
			errs = append(errs, run.errors...)
		}
		if len(errs) > 0 {
			notes = append(notes, fmt.Sprintf("%s, first error: `%s`", lib, errs[0]))
		}
	}
	qk := instKey{s.n, sc.id, q}
	for _, lib := range s.libs {
		if lib == q {
			continue
		}
		k := instKey{s.n, sc.id, lib}
		x := func(f func(instRun) float64) string {
			d := r.med(k, f)
			if d == 0 {
				return "-"
			}
			return num("%.2fx", r.med(qk, f)/d)
		}
		w("| *quorumlock / %s* | %s | | %s / %s | %s / %s | | | | %s | |\n", lib, x(perSecF), x(waitP50F), x(waitP99F), x(handP50F), x(handP99F), x(longestF))
	}
	w("\n")
	for _, n := range notes {
		w("%s.\n", n)
	}
	if len(notes) > 0 {
		w("\n")
	}
}

// modVersion is the version of module path this binary was built with.
func modVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "?"
}

// mergeResults writes path with the classic suite's report and the
// instances suite's section; an empty one keeps what the file has.
func mergeResults(path, classic, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rest, election := cutElection(string(old)) // the election suite's section stays, last
	oldClassic, oldSection := rest, ""
	if i := strings.Index(oldClassic, instBegin); i >= 0 {
		oldClassic, oldSection = oldClassic[:i], oldClassic[i:]
		if j := strings.Index(oldSection, instEnd); j >= 0 {
			oldSection = oldSection[:j+len(instEnd)] + "\n"
		}
	}
	if classic == "" {
		classic = oldClassic
		if strings.TrimSpace(classic) == "" {
			classic = "# Benchmark results\n"
		}
	}
	if section == "" {
		section = oldSection
	}
	content := strings.TrimRight(classic, "\n") + "\n"
	if section != "" {
		content += "\n" + section
	}
	if election != "" {
		content = strings.TrimRight(content, "\n") + "\n\n" + election
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
