package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/chaos"
	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// demoOpts is a parsed `redlock demo` command line.
type demoOpts struct {
	addrs          string
	duration       time.Duration
	workers, nodes int
	seed           uint64
	json           bool
	metrics        string // ADDR to serve Prometheus metrics on; "": none
}

// demoFlagSet returns the flags of demo, which set o.
func demoFlagSet(o *demoOpts) *flag.FlagSet {
	fs := newFlagSet("demo")
	fs.StringVar(&o.addrs, "addrs", "", "")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "")
	fs.IntVar(&o.workers, "workers", 8, "")
	fs.IntVar(&o.nodes, "nodes", 5, "")
	fs.Uint64Var(&o.seed, "seed", 0, "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.StringVar(&o.metrics, "metrics", "", "")
	return fs
}

// demoNames is the number of lock names the demo's workers contend for.
const demoNames = 3

// runDemo is `redlock demo`: the project's job in one command. Workers
// contend for a few locks with fencing on and write to a fenced in-memory
// resource while faults are injected (freeze a node, kill one and restart it
// after the TTL, cut one off, slow one down), never more than N-Q nodes at
// once. A live line shows progress each second; a table sums up. It exits
// 0 only if no two holders overlapped and no stale write was accepted.
func runDemo(args []string) int {
	var o demoOpts
	fs := demoFlagSet(&o)
	pos, command, dashdash, code, ok := parseCommand("demo", fs, args)
	if !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(pos) > 0:
		return usageErr("demo", "unexpected argument %q", pos[0])
	case dashdash && len(command) > 0:
		return usageErr("demo", "unexpected argument %q", command[0])
	case dashdash:
		return usageErr("demo", "unexpected argument %q", "--")
	case o.duration <= 0:
		return usageErr("demo", "--duration %v: must be > 0", o.duration)
	case o.workers < 1:
		return usageErr("demo", "--workers %d: must be >= 1", o.workers)
	case set["addrs"] && set["nodes"]:
		return usageErr("demo", "--addrs and --nodes exclude each other: --nodes starts local nodes")
	}
	if set["metrics"] {
		if _, _, err := net.SplitHostPort(o.metrics); err != nil {
			return usageErr("demo", "--metrics %q: want HOST:PORT (port 0: any free one): %v", o.metrics, err)
		}
	}
	// The nodes: --addrs, else --nodes local ones, else $REDLOCK_ADDRS (as
	// run and status), else 5 local ones.
	conn := connFlags{addrs: o.addrs, addrsFrom: "--addrs"}
	if !set["addrs"] && !set["nodes"] && strings.TrimSpace(os.Getenv(envAddrs)) != "" {
		conn.addrs, conn.addrsFrom = os.Getenv(envAddrs), envAddrs
	}
	yours := set["addrs"] || conn.addrs != ""
	if !yours && (o.nodes < 1 || o.nodes > 15) {
		return usageErr("demo", "--nodes %d: must be between 1 and 15", o.nodes)
	}

	cfg := chaos.Config{Duration: o.duration, Workers: o.workers, Names: demoNames, Seed: o.seed, InModel: true, Proxies: true}
	if o.metrics != "" {
		// Fed by the clients' observer seam; served while the demo runs.
		m := newDemoMetrics()
		bound, stop, err := serveMetrics(o.metrics, &m.reg)
		if err != nil {
			errorf("demo: --metrics %s: %v", o.metrics, err)
			return exitError
		}
		defer stop()
		cfg.Observer = m
		fmt.Fprintf(os.Stderr, "redlock demo: metrics at http://%s/metrics\n", bound)
	}
	if yours {
		list, err := conn.addrList()
		if err != nil {
			return usageErr("demo", "%v", err)
		}
		warnEven(len(list))
		fmt.Fprintf(os.Stderr, "redlock demo: your %s, from %s: only cut off and slowed down, through a local proxy\n", nodesWord(len(list)), conn.addrsFrom)
		if os.Getenv(envPassword) != "" {
			errorf("warning: demo: %s is not used: the demo reaches your nodes without a password", envPassword)
		}
		seed, owned, code := claimNames(list, o.seed)
		if code != exitOK {
			return code
		}
		cfg.Seed = seed
		if owned {
			defer deleteDemoKeys(list, lockNames(seed))
		}
		// Someone else's nodes: they can only be cut off or slowed
		// down, through a proxy; nothing is killed or frozen.
		for _, a := range list {
			cfg.Nodes = append(cfg.Nodes, remoteNode(a))
		}
		cfg.Tier, cfg.Kinds = "demo: your nodes", []string{chaos.Partition, chaos.Latency}
	} else {
		if _, err := redistest.Binary(); err != nil {
			errorf("demo: %v", err)
			return exitError
		}
		warnEven(o.nodes)
		fmt.Fprintf(os.Stderr, "redlock demo: starting %d redis-server processes on loopback (AOF, appendfsync always)...\n", o.nodes)
		c, err := redistest.Start(o.nodes, redistest.WithAOF())
		if err != nil {
			errorf("demo: %v", err)
			return exitError
		}
		defer c.Close()
		for _, n := range c.Nodes() {
			cfg.Nodes = append(cfg.Nodes, n)
		}
		cfg.Tier = "demo: local redis-server"
		cfg.Kinds = []string{chaos.Pause, chaos.Kill, chaos.Partition, chaos.Latency}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	live := liveLine(os.Stdout)
	cfg.OnTick = live
	fmt.Printf("redlock demo: %d workers, %d nodes, faults %s, for %v\n", cfg.Workers, len(cfg.Nodes), strings.Join(cfg.Kinds, "/"), cfg.Duration)
	s, err := chaos.Run(ctx, cfg)
	if err != nil {
		errorf("demo: %v", err)
		return exitError
	}
	fmt.Println()
	if o.json {
		fmt.Println(s.JSON())
	}
	printSummary(os.Stdout, s)
	if s.Overlaps > 0 || s.StaleAccepted > 0 {
		return exitError
	}
	return exitOK
}

// nodesWord is "1 node", "3 nodes".
func nodesWord(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// lockNames returns the lock names of a demo run with seed: those chaos.Run
// takes ("chaos-SEED%100000-I"). TestDemoYourNodes fails if they drift
// apart, as keys would then be left on the nodes.
//
// TODO(issue 9): have chaos.Config take a run id for the names, so that
// they are unique to the run whatever the seed; claimNames then needs no
// probe.
func lockNames(seed uint64) []string {
	names := make([]string, demoNames)
	for i := range names {
		names[i] = fmt.Sprintf("chaos-%d-%d", seed%100000, i)
	}
	return names
}

// demoKeys returns the keys of names on a node: each lock's key and its
// fencing counter.
func demoKeys(names []string) []any {
	var keys []any
	for _, n := range names {
		keys = append(keys, redlock.LockKey(n), redlock.CounterKey(n))
	}
	return keys
}

// claimNames picks the seed of a demo on the user's nodes, whose lock names
// it will delete at the end, and checks that a quorum of the nodes answers.
//
// Deleting a fencing counter is safe only when no other client uses its
// name: a counter is otherwise never deleted, since a token must never
// repeat. The names hold the seed, so claimNames probes the nodes for the
// names' keys: with a random seed it draws another until they are free;
// with --seed N (a replay) and the names in use (another demo with that
// seed, running, or killed before it cleaned up) the run uses them but
// does not delete them (owned false). Two demos started at the same moment
// with the same --seed can still both think they own them, which the help
// warns against.
func claimNames(addrs []string, seed uint64) (uint64, bool, int) {
	random := seed == 0
	for attempt := 0; ; attempt++ {
		if random {
			seed = max(rand.Uint64(), 1)
		}
		inUse, answered, failures := probeKeys(addrs, demoKeys(lockNames(seed)))
		if q := len(addrs)/2 + 1; answered < q {
			errorf("demo: %d of your %s answered, fewer than a quorum (%d): %s", answered, nodesWord(len(addrs)), q, strings.Join(failures, "; "))
			return 0, false, exitError
		}
		switch {
		case !inUse:
			return seed, true, exitOK
		case !random:
			errorf("warning: demo: the lock names of --seed %d are in use on your nodes (a demo with that seed, running or killed): they will not be deleted at the end", seed)
			return seed, false, exitOK
		case attempt == 10:
			errorf("warning: demo: the lock names of 10 random seeds were in use on your nodes: those of seed %d will not be deleted at the end", seed)
			return seed, false, exitOK
		}
	}
}

// probeKeys asks each node, in parallel, whether any of keys exists. It
// returns whether one does on a node that answered, how many answered, and
// the failures of the others ("node ADDR: error").
func probeKeys(addrs []string, keys []any) (inUse bool, answered int, failures []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			n, err := onNode(a, "EXISTS", keys...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("node %s: %s", a, oneLine(err.Error())))
				return
			}
			answered++
			if c, _ := n.(int64); c > 0 {
				inUse = true
			}
		})
	}
	wg.Wait()
	slices.Sort(failures)
	return inUse, answered, failures
}

// deleteDemoKeys deletes the keys of the demo's lock names on the user's
// nodes, reached directly (not through the proxies, which may be cutting a
// node off): each lock's key and every key the library keeps beside it
// under the same "{NAME}" (the fencing counter, which nothing else ever
// deletes; the waiters' line). This is safe only because claimNames found
// the names unused: they are this run's alone, its workers have stopped,
// and no other client takes these locks or reads their tokens.
func deleteDemoKeys(addrs []string, names []string) {
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Go(func() {
			if err := deleteNameKeys(a, names); err != nil {
				var patterns []string
				for _, n := range names {
					patterns = append(patterns, redlock.LockKey(n)+"*")
				}
				errorf("warning: demo: its keys on %s were not all deleted (%s); delete them there: %s",
					a, oneLine(err.Error()), strings.Join(patterns, " "))
			}
		})
	}
	wg.Wait()
}

// deleteNameKeys deletes, on the node at addr, the keys that start with
// LockKey(name) for one of names, found with SCAN (the node may hold many
// other keys: KEYS would block it).
func deleteNameKeys(addr string, names []string) error {
	prefixes := make([]string, len(names))
	for i, n := range names {
		prefixes[i] = redlock.LockKey(n)
	}
	common := prefixes[0]
	for _, p := range prefixes[1:] {
		for !strings.HasPrefix(p, common) {
			common = common[:len(common)-1]
		}
	}
	pattern := globEscape(common) + "*"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := pool.New(addr, pool.WithDialTimeout(dialTimeout))
	defer p.Close()
	var keys []any
	for cursor := "0"; ; {
		reply, err := redis.Values(query(ctx, p, time.Second, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return err
		}
		var batch []string
		if _, err := redis.Scan(reply, &cursor, &batch); err != nil {
			return err
		}
		for _, k := range batch {
			if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
				keys = append(keys, k)
			}
		}
		if cursor == "0" {
			break
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := query(ctx, p, time.Second, "DEL", keys...)
	return err
}

// globEscape escapes the characters special to Redis's glob patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// onNode runs one command on the node at addr, over a connection of its
// own: the dial within the dial timeout, the round trip within a second.
func onNode(addr, cmd string, args ...any) (any, error) {
	p := pool.New(addr, pool.WithDialTimeout(dialTimeout))
	defer p.Close()
	return query(context.Background(), p, time.Second, cmd, args...)
}

// liveLine returns the OnTick callback: one status line a second, redrawn in
// place on a terminal.
func liveLine(w *os.File) func(chaos.Progress) {
	tty := false
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	return func(p chaos.Progress) {
		down := p.Faulty[chaos.Kill] + p.Faulty[chaos.Restart]
		up := p.Nodes - down - p.Faulty[chaos.Pause] - p.Faulty[chaos.Partition] - p.Faulty[chaos.Latency]
		line := fmt.Sprintf("[%3.0fs] %4.0f acq/s  line: %d waiting, %.0f handovers/s  p50 %6.2fms  p99 %7.2fms  nodes %d up, %d frozen, %d down, %d cut off, %d slow  overlaps %d  stale writes rejected %d",
			p.Elapsed.Seconds(), p.PerSecond, p.Waiting, p.HandoversPerSec, ms(p.P50), ms(p.P99), up, p.Faulty[chaos.Pause], down,
			p.Faulty[chaos.Partition], p.Faulty[chaos.Latency], p.Overlaps, p.StaleRejected)
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// printSummary writes the end-of-run table.
func printSummary(w io.Writer, s chaos.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	total, kinds := s.FaultList()
	verdict := "OK: no overlaps, no stale write accepted"
	if s.Overlaps > 0 || s.StaleAccepted > 0 {
		verdict = "FAILED: " + strings.Join(s.Violations, "; ")
	}
	rows := [][2]string{
		{"duration", fmt.Sprintf("%.1fs", s.Seconds)},
		{"nodes / workers / lock names", fmt.Sprintf("%d / %d / %d", s.Nodes, s.Workers, s.Names)},
		{"acquisitions", fmt.Sprintf("%d (%.0f/s)", s.Acquisitions, float64(s.Acquisitions)/max(s.Seconds, 1e-9))},
		{"lock latency p50 / p99", fmt.Sprintf("%.2fms / %.2fms", s.LockP50Ms, s.LockP99Ms)},
		{"faults injected", fmt.Sprintf("%d (%s)", total, kinds)},
		{"overlapping holds", fmt.Sprint(s.Overlaps)},
		{"token regressions", fmt.Sprint(s.TokenRegressions + s.TokenRepeats)},
		{"stale writes accepted", fmt.Sprint(s.StaleAccepted)},
		{"stale writes rejected", fmt.Sprint(s.StaleRejected)},
		{"longest wait with no acquisition", fmt.Sprintf("%dms", s.LongestDroughtMs)},
		{"seed", fmt.Sprint(s.Seed)},
		{"verdict", verdict},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
	fmt.Fprintln(w, s.Line())
}

// remoteNode is a node the demo does not own: it can be reached, not killed
// or frozen.
type remoteNode string

func (n remoteNode) Addr() string  { return string(n) }
func (n remoteNode) Kill() error   { return errNotOwned }
func (n remoteNode) Start() error  { return errNotOwned }
func (n remoteNode) Pause() error  { return errNotOwned }
func (n remoteNode) Resume() error { return errNotOwned }

var errNotOwned = errors.New("the demo does not own this node")
