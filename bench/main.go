// Command bench measures quorumlock side by side with go-redsync/redsync v4
// and the raw floor (parallel SET NX PX, then parallel DEL) on five local
// redis-server processes: every figure for every library in each round, the
// libraries alternating, several rounds; it prints medians and ratios, and
// writes RESULTS.md and a latency chart.
//
//	go run . -rounds 5
//
// The instances suite (instances.go) measures contention across service
// instances instead: one OS process per instance, each with its own client,
// all contending for one lock name; it writes its own section of RESULTS.md
// and a wait distribution chart.
//
//	go run . -suite instances -rounds 3
//
// The election suite (election.go) measures the failover time of an
// Election: after the leader is killed, and after it resigns.
//
//	go run . -suite election -rounds 2
//
// The semaphore suite (semaphore.go) runs 16 such instances on the four
// permits of one semaphore, and writes SEMAPHORE.md.
//
//	go run . -suite semaphore -rounds 3
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == workerFlag { // re-executed as one instance (hidden)
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(1)
		}
		return
	}
	rounds := flag.Int("rounds", 5, "rounds; each runs every figure (scenario) for every library")
	out := flag.String("out", "RESULTS.md", "where to write the results (each suite rewrites only its own part)")
	chart := flag.String("chart", "latency.png", "where to write the latency chart")
	cdf := flag.String("cdf", "wait-cdf.png", "where the instances suite writes its wait distribution chart")
	suite := flag.String("suite", "classic", "classic: the in-process figures; instances: contention across processes; election: failover times; all: those three; semaphore: K=4 permits across 16 processes")
	semOut := flag.String("semout", "SEMAPHORE.md", "where the semaphore suite writes its results")
	quick := flag.Bool("quick", false, "short durations (a smoke run, not figures to publish)")
	flag.Parse()
	var err error
	switch *suite {
	case "classic":
		err = run(*rounds, *out, *chart, *quick)
	case "instances":
		err = runInstancesSuite(*rounds, *out, *cdf, *quick)
	case "election":
		err = runElectionSuite(*rounds, *out, *quick)
	case "semaphore":
		err = runSemaphoreSuite(*rounds, *semOut, *quick)
	case "all":
		if err = run(*rounds, *out, *chart, *quick); err == nil {
			err = runInstancesSuite(*rounds, *out, *cdf, *quick)
		}
		if err == nil {
			err = runElectionSuite(*rounds, *out, *quick)
		}
	default:
		err = fmt.Errorf("-suite %q: want classic, instances, election, all or semaphore", *suite)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// durations of one round's figures.
type plan struct {
	latN, frozenN     int
	tpDur, contDur    time.Duration
	memLocks, memHold int
}

func run(rounds int, out, chart string, quick bool) error {
	p := plan{latN: 3000, frozenN: 60, tpDur: 3 * time.Second, contDur: 3 * time.Second, memLocks: 10000, memHold: 4}
	if quick {
		p = plan{latN: 300, frozenN: 10, tpDur: time.Second, contDur: time.Second, memLocks: 1000, memHold: 2}
	}
	c, err := redistest.Start(5)
	if err != nil {
		return err
	}
	defer c.Close()
	addrs := c.Addrs()
	fl, q, rs := newFloor(addrs), newQuorumlock(addrs), newRedsync(addrs)
	defer fl.close()
	defer q.close()
	defer rs.close()
	all := []locker{fl, q, rs}
	res := newResults()
	fmt.Printf("bench: 5 redis-server nodes, %d rounds\n", rounds)
	for r := range rounds {
		order := rotate(all, r)
		for _, l := range order {
			lat, allocs, bytes, err := latencies(l, "bench:lat:"+l.name(), p.latN)
			if err != nil {
				return err
			}
			res.latency(l.name(), lat, allocs, bytes)
		}
		for _, l := range order {
			perSec, cpu, allocs, _ := throughput(l, 64, 10000, p.tpDur)
			res.throughput(l.name(), perSec, cpu, allocs)
		}
		for _, l := range rotate([]locker{q, rs}, r) {
			res.contention(l.name(), contention(l, 16, "bench:cont:"+l.name(), p.contDur))
		}
		c.Nodes()[0].Pause()
		for _, l := range rotate([]locker{q, rs}, r) {
			lat, _, _, err := latencies(l, "bench:frozen:"+l.name(), p.frozenN)
			if err != nil {
				c.Nodes()[0].Resume()
				return err
			}
			res.frozen(l.name(), lat)
		}
		c.Nodes()[0].Resume()
		time.Sleep(200 * time.Millisecond) // connections to the frozen node are replaced
		fmt.Printf("round %d/%d done\n", r+1, rounds)
	}
	mem, err := memory(addrs, p.memLocks, time.Duration(p.memHold)*time.Second)
	if err != nil {
		return err
	}
	res.mem = mem
	report := res.report(rounds, quick)
	fmt.Print(report)
	if err := mergeResults(out, report, ""); err != nil { // keeps the instances suite's section
		return err
	}
	return drawChart(chart, res)
}

func rotate[T any](ls []T, r int) []T {
	out := make([]T, len(ls))
	for i := range ls {
		out[i] = ls[(i+r)%len(ls)]
	}
	return out
}
