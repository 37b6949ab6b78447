package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/quorumlock/quorumlock/internal/chaos"
	"github.com/quorumlock/quorumlock/internal/redistest"
)

// runDemo is `redlock demo`: the project's job in one command. Workers
// contend for a few locks with fencing on and write to a fenced in-memory
// resource while faults are injected (freeze a node, kill one and restart it
// after the TTL, cut one off, slow one down), never more than N-Q nodes at
// once. A live line shows progress each second; a table sums up. It exits
// 0 only if no two holders overlapped and no stale write was accepted.
func runDemo(args []string) int {
	fs := newFlagSet("demo")
	addrs := fs.String("addrs", "", "")
	dur := fs.Duration("duration", 20*time.Second, "")
	workers := fs.Int("workers", 8, "")
	nodes := fs.Int("nodes", 5, "")
	seed := fs.Uint64("seed", 0, "")
	asJSON := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			return exitOK
		}
		return usageErr("demo", "%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("demo", "unexpected argument %q", fs.Arg(0))
	case *dur <= 0:
		return usageErr("demo", "--duration %v: must be > 0", *dur)
	case *workers < 1:
		return usageErr("demo", "--workers %d: must be >= 1", *workers)
	case *addrs == "" && (*nodes < 1 || *nodes > 15):
		return usageErr("demo", "--nodes %d: must be between 1 and 15", *nodes)
	}

	cfg := chaos.Config{Duration: *dur, Workers: *workers, Seed: *seed, InModel: true, Proxies: true}
	if *addrs != "" {
		list, err := (&connFlags{addrs: *addrs}).addrList()
		if err != nil {
			return usageErr("demo", "%v", err)
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
		fmt.Fprintf(os.Stderr, "redlock demo: starting %d redis-server processes on loopback (AOF, appendfsync always)...\n", *nodes)
		c, err := redistest.Start(*nodes, redistest.WithAOF())
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
	if *asJSON {
		fmt.Println(s.JSON())
	}
	printSummary(os.Stdout, s)
	if s.Overlaps > 0 || s.StaleAccepted > 0 {
		return exitError
	}
	return exitOK
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
		line := fmt.Sprintf("[%3.0fs] %4.0f acq/s  p50 %6.2fms  p99 %7.2fms  nodes %d up, %d frozen, %d down, %d cut off, %d slow  overlaps %d  stale writes rejected %d",
			p.Elapsed.Seconds(), p.PerSecond, ms(p.P50), ms(p.P99), up, p.Faulty[chaos.Pause], down,
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
