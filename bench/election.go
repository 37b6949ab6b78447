package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// The election suite: failover time of redlock's Election. Candidates are
// separate clients (each its own pools and connections, as separate
// instances have), campaigning for one election; the leader then either
// dies (its client closed without resigning: no Unlock, no more
// extensions, its keys left to expire) or resigns (Unlock), and the figure
// is the time from that moment to the next Campaign returning in another
// candidate. The kill lands at a random point of the leader's extension
// cycle, as a crash would.

const (
	elecBegin = "<!-- election suite: begin (go run . -suite election) -->"
	elecEnd   = "<!-- election suite: end -->"
)

// elecPlan is one run's size.
type elecPlan struct {
	candidates int
	failovers  int // of each kind, per round
	ttl        time.Duration
}

// candidate is one campaigning client.
type elecCandidate struct {
	id     int
	client *redlock.Client
	pools  []pool.Pool
	cancel context.CancelFunc
}

// leadership is a Campaign that returned.
type leadership struct {
	c  *elecCandidate
	l  *redlock.Lock
	at time.Time
}

func runElectionSuite(rounds int, out string, quick bool) error {
	p := elecPlan{candidates: 4, failovers: 10, ttl: time.Second}
	if quick {
		p.failovers = 3
	}
	c, err := redistest.Start(5)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("bench: election suite, %d rounds of %d failovers of each kind, %d candidates, TTL %v\n", rounds, p.failovers, p.candidates, p.ttl)
	began := time.Now()
	var killed, resigned []time.Duration
	unconfirmed := 0
	for r := range rounds {
		k, s, err := electionRound(c.Addrs(), p, fmt.Sprintf("bench-%d-%d", r, time.Now().UnixNano()), &unconfirmed)
		if err != nil {
			return err
		}
		killed, resigned = append(killed, k...), append(resigned, s...)
		fmt.Printf("  round %d: killed p50 %.1f ms, resigned p50 %.2f ms\n", r+1, ms(pct(k, 50)), ms(pct(s, 50)))
	}
	section := electionReport(p, rounds, killed, resigned, unconfirmed, time.Since(began), quick)
	fmt.Print(section)
	return mergeElection(out, section)
}

// electionRound runs p.failovers failovers of each kind, alternating, and
// returns their durations: after a kill, after a resignation. A
// resignation whose Unlock failed is counted in unconfirmed, not measured.
func electionRound(addrs []string, p elecPlan, name string, unconfirmed *int) (killed, resigned []time.Duration, err error) {
	won := make(chan leadership, p.candidates)
	var all []*elecCandidate
	defer func() {
		for _, c := range all {
			c.cancel()
			c.client.Close()
			for _, pl := range c.pools {
				pl.Close()
			}
		}
	}()
	start := func() error {
		c := &elecCandidate{id: len(all)}
		for _, a := range addrs {
			c.pools = append(c.pools, pool.New(a))
		}
		all = append(all, c)
		cl, err := redlock.New(c.pools, redlock.WithTTL(p.ttl))
		if err != nil {
			return err
		}
		c.client = cl
		e, err := cl.Election(name)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go func() {
			for ctx.Err() == nil {
				l, err := e.Campaign(ctx, fmt.Sprint("candidate-", c.id))
				if err != nil {
					return // ended, or its client closed (killed)
				}
				won <- leadership{c: c, l: l, at: time.Now()}
				<-l.Done() // leads until it resigns or is killed
			}
		}()
		return nil
	}
	for range p.candidates {
		if err := start(); err != nil {
			return nil, nil, err
		}
	}
	next := func() (leadership, error) {
		select {
		case w := <-won:
			return w, nil
		case <-time.After(10*p.ttl + 10*time.Second):
			return leadership{}, errors.New("no new leader in 10 TTL + 10s")
		}
	}
	cur, err := next()
	if err != nil {
		return nil, nil, err
	}
	for i := range 2 * p.failovers {
		// Lead a random part of an extension cycle, then fail over.
		time.Sleep(p.ttl/10 + rand.N(p.ttl/3))
		kill := i%2 == 0
		t0 := time.Now()
		failed := false
		if kill {
			cur.c.cancel()
			cur.c.client.Close() // dies: no resignation; its keys expire
		} else if err := cur.l.Unlock(context.Background()); err != nil {
			// Nodes missed their timeout (a loaded machine): the keys the
			// release did not reach expire with the TTL. Not a hand-over
			// to measure.
			fmt.Printf("  resignation not confirmed, not measured: %v\n", err)
			failed = true
		}
		w, err := next()
		if err != nil {
			return nil, nil, err
		}
		if w.c == cur.c {
			return nil, nil, errors.New("the old leader led again")
		}
		d := w.at.Sub(t0)
		if failed {
			*unconfirmed++
		} else if kill {
			killed = append(killed, d)
			if err := start(); err != nil { // a fresh instance takes its place
				return nil, nil, err
			}
		} else {
			resigned = append(resigned, d)
		}
		cur = w
	}
	cur.l.Unlock(context.Background())
	return killed, resigned, nil
}

func electionReport(p elecPlan, rounds int, killed, resigned []time.Duration, unconfirmed int, took time.Duration, quick bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n\n## Election failover\n\n", elecBegin)
	if quick {
		w("**Quick run: short, not figures to publish.**\n\n")
	}
	w("Measured by `go run . -suite election -rounds %d` (in `bench/`) on %s: %d cores, %s, five local redis-server processes. %d candidates, each a separate client with its own pools, campaign for one election (TTL %v, node timeout %v, the other options default). The leader leads for a random %v-%v, then it is either killed (its client closed without resigning: no Unlock, no more extensions, its keys left to expire; a fresh candidate replaces it) or resigns (`Unlock`), alternately, %d times each per round. The figure is the time from the kill or the resignation to the next `Campaign` returning in another candidate, over all %d rounds (%.0fs in all).\n\n",
		rounds, time.Now().Format("2006-01-02"), runtime.GOMAXPROCS(0), runtime.Version(), p.candidates, p.ttl, redlock.DefaultNodeTimeout,
		p.ttl/10, (p.ttl/10 + p.ttl/3).Round(time.Millisecond), p.failovers, rounds, took.Seconds())
	w("| failover | n | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		what string
		ds   []time.Duration
	}{{"leader killed", killed}, {"leader resigned", resigned}} {
		w("| %s | %d | %.1f | %.1f | %.1f |\n", row.what, len(row.ds), ms(pct(row.ds, 50)), ms(pct(row.ds, 99)), ms(pct(row.ds, 100)))
	}
	if unconfirmed > 0 {
		w("\nResignations not confirmed by a quorum within the node timeout (the machine was loaded), so not measured: %d.\n", unconfirmed)
	}
	w("\nA killed leader's keys live until their TTL ends, counted from its last extension (about every TTL/3), so the failover after a kill is the rest of that TTL plus the hand-over; the hand-over after a resignation is the line's reservation (the release names the next in line), that candidate's acquisition and its leader record: about two round trips.\n\n%s\n", elecEnd)
	return b.String()
}

// mergeElection writes section into path in place of the previous election
// section, or at the end; the other sections are kept as they are.
func mergeElection(path, section string) error {
	old, err := readOrEmpty(path)
	if err != nil {
		return err
	}
	rest, _ := cutElection(old)
	content := strings.TrimRight(rest, "\n") + "\n\n" + section
	return writeFile(path, content)
}

// cutElection returns s without its election section, and the section
// ("" when there is none).
func cutElection(s string) (rest, section string) {
	i := strings.Index(s, elecBegin)
	if i < 0 {
		return s, ""
	}
	j := strings.Index(s[i:], elecEnd)
	if j < 0 {
		return s[:i], s[i:]
	}
	end := i + j + len(elecEnd)
	return strings.TrimRight(s[:i], "\n") + "\n" + strings.TrimLeft(s[end:], "\n"), s[i:end] + "\n"
}

func readOrEmpty(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return string(b), nil
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
