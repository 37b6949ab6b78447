package main

// The instances suite: contention across service instances. Each instance
// is a separate OS process (this binary re-executed with -worker) with its
// own client and connections; all of them contend for one lock name. The
// parent starts K workers, sends each its configuration (a JSON line on
// stdin), waits until every one has built its client and warmed its
// connections ("ready" on stdout), then sends them all one wall-clock start
// time; each runs for the scenario's duration and writes its acquisitions as
// JSON on stdout, which the parent merges into the figures.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

type scenario struct {
	id, title   string
	instances   int
	hold, pause time.Duration
	chart       bool // its waits go in the wait CDF
}

var scenarios = []scenario{
	{id: "a", title: "16 instances: take, release at once, 2 ms other work", instances: 16, pause: 2 * time.Millisecond, chart: true},
	{id: "b", title: "16 instances: hold 5 ms, 2 ms other work", instances: 16, hold: 5 * time.Millisecond, pause: 2 * time.Millisecond, chart: true},
	{id: "c", title: "2 instances: hold 5 ms, no pause", instances: 2, hold: 5 * time.Millisecond},
}

// tryLibs are the libraries of the one-attempt figures: the locks on one
// node (the hand-over floor has no attempt).
func tryLibs() []string {
	return slices.DeleteFunc(slices.Clone(nodeSets[1].libs), func(l string) bool { return l == ring })
}

// nodeSet is one group of runs: the nodes and the libraries run on them.
type nodeSet struct {
	n    int
	libs []string
}

var nodeSets = []nodeSet{
	{n: 5, libs: []string{q, rs, ring}},
	{n: 1, libs: []string{q, rs, rl, rue, ring}},
}

// instPlan: a run lasts dur, of which the first warm is not measured.
type instPlan struct {
	dur, warm time.Duration
	tryN      int
}

// cmdStats (BENCH_CMDSTATS=1) prints, after each run, the commands the first
// node served per acquisition of the whole run: where a library's work goes.
var cmdStats = os.Getenv("BENCH_CMDSTATS") == "1"

// only (BENCH_ONLY=regexp) runs only the runs whose "n<nodes>:<scenario>:<library>"
// matches, and the one-attempt figures only when "try" matches; it prints
// the runs and writes nothing: a development aid, not figures to publish.
var only = os.Getenv("BENCH_ONLY")

// printCmdStats prints node's INFO commandstats per acquisition.
func printCmdStats(n *redistest.Node, acquisitions int) {
	v, err := n.Do("INFO", "commandstats")
	b, _ := v.([]byte)
	if err != nil || acquisitions == 0 {
		fmt.Printf("    commandstats: %v (%d acquisitions)\n", err, acquisitions)
		return
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		c, _ := strconv.Atoi(calls)
		parts = append(parts, fmt.Sprintf("%s %.2f", strings.TrimPrefix(name, "cmdstat_"), float64(c)/float64(acquisitions)))
	}
	sort.Strings(parts)
	fmt.Printf("    node 0 commands per acquisition (%d acquisitions): %s\n", acquisitions, strings.Join(parts, ", "))
}

func runInstancesSuite(rounds int, out, cdf string, quick bool) error {
	p := instPlan{dur: 5 * time.Second, warm: time.Second, tryN: 2000}
	if quick {
		p = instPlan{dur: 1500 * time.Millisecond, warm: 500 * time.Millisecond, tryN: 200}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to re-execute: %w", err)
	}
	clusters := map[int]*redistest.Cluster{}
	for _, s := range nodeSets {
		c, err := redistest.Start(s.n)
		if err != nil {
			return err
		}
		defer c.Close()
		clusters[s.n] = c
	}
	one := clusters[1].Addrs()
	tries := map[string]waitLocker{}
	for _, lib := range tryLibs() {
		l, err := newWaitLocker(lib, one)
		if err != nil {
			return err
		}
		defer l.close()
		tries[lib] = l
	}
	var pick *regexp.Regexp
	if only != "" {
		if pick, err = regexp.Compile(only); err != nil {
			return fmt.Errorf("BENCH_ONLY %q: %w", only, err)
		}
	}
	res := newInstResults(p)
	began := time.Now()
	fmt.Printf("bench: instances suite, %d rounds, runs of %v (first %v not measured)\n", rounds, p.dur, p.warm)
	for r := range rounds {
		for _, s := range nodeSets {
			addrs := clusters[s.n].Addrs()
			for _, sc := range scenarios {
				for _, lib := range rotate(s.libs, r) {
					if pick != nil && !pick.MatchString(fmt.Sprintf("n%d:%s:%s", s.n, sc.id, lib)) {
						continue
					}
					key := fmt.Sprintf("bench:inst:n%d:%s:%s:r%d:%d", s.n, sc.id, lib, r, time.Now().UnixNano())
					if cmdStats {
						clusters[s.n].Nodes()[0].Do("CONFIG", "RESETSTAT")
					}
					t0 := time.Now()
					ws, start, err := runWorkers(exe, workerConfig{Lib: lib, Addrs: addrs, Key: key, Hold: sc.hold, Pause: sc.pause, Duration: p.dur}, sc.instances)
					if err != nil {
						return fmt.Errorf("%d nodes, scenario %s, %s: %w", s.n, sc.id, lib, err)
					}
					f := instFigures(ws, start.Add(p.warm), start.Add(p.dur))
					res.add(instKey{s.n, sc.id, lib}, f)
					if cmdStats {
						total := 0
						for _, w := range ws {
							total += len(w.Acq)
						}
						printCmdStats(clusters[s.n].Nodes()[0], total)
					}
					fmt.Printf("  round %d, %d node(s), %s, %-11s %6.0f acq/s, held %4.1f%%, wait p50/p99 %7.2f/%8.2f ms, handover p50 %6.2f ms, Jain %.3f, gave up %d (%.1fs)\n",
						r+1, s.n, sc.id, lib, f.perSec, 100*f.held, ms(f.waitP50), ms(f.waitP99), ms(f.handP50), f.jain, f.gaveUp, time.Since(t0).Seconds())
				}
			}
		}
		for _, lib := range rotate(tryLibs(), r) {
			if pick != nil && !pick.MatchString("try:"+lib) {
				continue
			}
			lat, failed := tryLatencies(tries[lib], fmt.Sprintf("bench:inst:try:%s:r%d", lib, r), p.tryN)
			res.try(lib, lat, failed)
			if len(lat) > 0 {
				fmt.Printf("  round %d, one attempt (TryLock+Unlock), %-11s p50/p99 %6.3f/%6.3f ms, failed %d\n",
					r+1, lib, ms(pct(lat, 50)), ms(pct(lat, 99)), failed)
			}
		}
		fmt.Printf("round %d/%d done (%.0fs so far)\n", r+1, rounds, time.Since(began).Seconds())
	}
	res.elapsed = time.Since(began)
	if pick != nil {
		return nil
	}
	section := res.report(rounds, quick, cdf)
	fmt.Print(section)
	if err := mergeResults(out, "", section); err != nil {
		return err
	}
	return drawWaitCDF(cdf, res)
}

// runWorkers runs k workers with cfg (ID set per worker) and returns their
// results and the start time they were given.
func runWorkers(exe string, cfg workerConfig, k int) ([]workerResult, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+2*time.Minute)
	defer cancel()
	type proc struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout *bufio.Reader
		stderr bytes.Buffer
	}
	procs := make([]*proc, k)
	kill := func() {
		for _, p := range procs {
			if p != nil && p.cmd.Process != nil {
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		}
	}
	fail := func(i int, err error) error {
		kill()
		if i >= 0 && procs[i] != nil {
			if msg := strings.TrimSpace(procs[i].stderr.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
		return err
	}
	for i := range k {
		p := &proc{cmd: exec.CommandContext(ctx, exe, workerFlag)}
		p.cmd.Stderr = &p.stderr
		in, err := p.cmd.StdinPipe()
		if err != nil {
			return nil, time.Time{}, fail(-1, err)
		}
		outp, err := p.cmd.StdoutPipe()
		if err != nil {
			return nil, time.Time{}, fail(-1, err)
		}
		p.stdin, p.stdout = in, bufio.NewReader(outp)
		if err := p.cmd.Start(); err != nil {
			return nil, time.Time{}, fail(-1, fmt.Errorf("starting worker %d: %w", i, err))
		}
		procs[i] = p
		c := cfg
		c.ID, c.Instances = i, k
		line, _ := json.Marshal(c)
		if _, err := p.stdin.Write(append(line, '\n')); err != nil {
			return nil, time.Time{}, fail(i, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	for i, p := range procs {
		line, err := p.stdout.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			p.cmd.Wait() // its stderr, complete
			return nil, time.Time{}, fail(i, fmt.Errorf("worker %d not ready (%q, %v)", i, line, err))
		}
	}
	// Every client is built and connected: start together, shortly.
	start := time.Now().Add(100 * time.Millisecond)
	for i, p := range procs {
		if _, err := fmt.Fprintf(p.stdin, "%d\n", start.UnixNano()); err != nil {
			return nil, time.Time{}, fail(i, fmt.Errorf("worker %d: %w", i, err))
		}
		p.stdin.Close()
	}
	results := make([]workerResult, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := json.NewDecoder(p.stdout).Decode(&results[i]); err != nil {
				errs[i] = fmt.Errorf("worker %d result: %w", i, err)
				io.Copy(io.Discard, p.stdout)
			}
			if err := p.cmd.Wait(); err != nil && errs[i] == nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			if msg := strings.TrimSpace(procs[i].stderr.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return nil, time.Time{}, err
		}
	}
	return results, start, nil
}

// instRun is one run's figures, over the measured window [from, to).
type instRun struct {
	acqs             int
	perSec           float64
	held             float64 // share of the window covered by [acquired, release called]
	waitP50, waitP99 time.Duration
	handP50, handP99 time.Duration
	hands            int           // handovers (between different instances)
	longest          time.Duration // completed waits and those still going at the end
	jain, minMean    float64
	same             float64 // share of acquisitions whose previous holder was the same instance
	gaveUp           int     // the whole run, warm-up included
	unlockErrs       int
	overlaps         int // an acquisition returned before the previous hold's release was called
	stuck            int // acquire calls still waiting at the end after more than a second
	waits            []time.Duration
	errors           []string
}

// instFigures merges the workers' acquisitions. An acquisition counts when
// its acquire call returned in [from, to); its wait is the call's whole
// duration, even when the call started before from.
func instFigures(ws []workerResult, from, to time.Time) instRun {
	type acq struct {
		inst            int
		asked, got, rel int64
	}
	var all []acq
	var f instRun
	lo, hi := from.UnixNano(), to.UnixNano()
	counts := make([]float64, len(ws))
	for i, w := range ws {
		for _, a := range w.Acq {
			all = append(all, acq{i, a[0], a[1], a[2]})
		}
		f.gaveUp += w.GaveUp
		f.unlockErrs += w.UnlockErrs
		f.errors = append(f.errors, w.Errors...)
		if w.Unfinished > 0 {
			f.longest = max(f.longest, time.Duration(hi-w.Unfinished))
			if time.Duration(hi-w.Unfinished) > time.Second {
				f.stuck++
			}
		}
	}
	slices.SortFunc(all, func(a, b acq) int { return cmp.Compare(a.got, b.got) })
	var hands []time.Duration
	var held, heldEnd int64 = 0, lo // union of [got, rel] clipped to the window
	var sameN, pairs int
	for i, a := range all {
		if a.got < lo || a.got >= hi {
			continue
		}
		f.acqs++
		counts[a.inst]++
		w := time.Duration(a.got - a.asked)
		f.waits = append(f.waits, w)
		f.longest = max(f.longest, w)
		if i > 0 {
			prev := all[i-1]
			pairs++
			switch {
			case a.got < prev.rel:
				f.overlaps++
			case prev.inst == a.inst:
				sameN++
			default:
				hands = append(hands, time.Duration(a.got-prev.rel))
			}
		}
	}
	for _, a := range all { // sorted by got
		s, e := max(a.got, heldEnd), min(a.rel, hi)
		if e > s {
			held += e - s
			heldEnd = e
		}
	}
	window := float64(hi - lo)
	f.perSec = float64(f.acqs) / (window / 1e9)
	f.held = float64(held) / window
	f.waitP50, f.waitP99 = pct(f.waits, 50), pct(f.waits, 99)
	f.hands = len(hands)
	f.handP50, f.handP99 = pct(hands, 50), pct(hands, 99)
	f.jain, f.minMean = fairness(counts)
	if pairs > 0 {
		f.same = float64(sameN) / float64(pairs)
	}
	return f
}

// fairness returns Jain's index over xs, (sum x)^2 / (n * sum x^2), and
// the smallest x over the mean.
func fairness(xs []float64) (jain, minMean float64) {
	var sum, sq float64
	least := math.Inf(1)
	for _, x := range xs {
		sum += x
		sq += x * x
		least = min(least, x)
	}
	if sum == 0 {
		return 0, 0
	}
	return sum * sum / (float64(len(xs)) * sq), least / (sum / float64(len(xs)))
}

// tryLatencies: one goroutine, n single attempts each followed by the
// release, on an uncontended name. A failed attempt or release (a node
// timeout on a loaded machine) is counted, not timed, and the next pairs use
// a new name, as a failed release may leave the key held until its TTL.
func tryLatencies(l waitLocker, key string, n int) (lat []time.Duration, failed int) {
	ctx := context.Background()
	lat = make([]time.Duration, 0, n)
	name := key
	for range n {
		start := time.Now()
		unlock, err := l.tryLock(ctx, name)
		if err == nil {
			err = unlock()
		}
		if err != nil {
			failed++
			name = fmt.Sprintf("%s:%d", key, failed)
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, failed
}
