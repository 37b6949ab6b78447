package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Verdicts of status.
const (
	verdictHeld    = "held by a quorum" // one value on at least Q nodes
	verdictFree    = "free"             // Q or more nodes answered, none has the key
	verdictSplit   = "split"            // Q or more answered, some keys, no value on Q
	verdictUnknown = "unknown"          // fewer than Q nodes answered (exit 4)
)

// statusScript reads the lock key's value, its PTTL and the fencing
// counter in one atomic step, so that the holder and its TTL come from the
// same instant, in one round trip.
const statusScript = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}`

// nodeStatus is one node's view of the lock. Absent values are null in JSON.
type nodeStatus struct {
	Addr      string  `json:"addr"`
	Reachable bool    `json:"reachable"`
	Error     *string `json:"error"`
	// Holder is the first characters of the key's value: the full value
	// would let whoever reads the output release or extend the lock.
	Holder  *string `json:"holder"`
	TTLms   *int64  `json:"ttl_ms"`  // PTTL; -1: the key has no expiry
	Counter *int64  `json:"counter"` // fencing counter, null when none

	value string // the full value, compared across nodes for the verdict
}

// statusReport is what status prints.
type statusReport struct {
	Name    string       `json:"name"`
	Nodes   []nodeStatus `json:"nodes"`
	Verdict string       `json:"verdict"`
	Quorum  int          `json:"quorum"`
}

// statusOpts is a parsed `redlock status` command line.
type statusOpts struct {
	conn connFlags
	json bool
}

// statusFlagSet returns the flags of status, which set o.
func statusFlagSet(o *statusOpts) *flag.FlagSet {
	fl := newFlagSet("status")
	o.conn.register(fl)
	fl.BoolVar(&o.json, "json", false, "")
	return fl
}

// runStatus is `redlock status [flags] NAME`.
func runStatus(args []string) int {
	var o statusOpts
	fl := statusFlagSet(&o)
	cf := &o.conn
	pos, command, dashdash, err := parseArgs(fl, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp("status")
		return exitOK
	}
	if err != nil {
		return usageErr("status", "%v", err)
	}
	cf.resolveEnv(fl)
	switch {
	case len(pos) == 0:
		return usageErr("status", "missing lock NAME: redlock status [flags] NAME")
	case len(pos) > 1 || dashdash || len(command) > 0:
		return usageErr("status", "unexpected arguments after NAME %q: status takes one NAME", pos[0])
	}
	if err := checkName(pos[0]); err != nil {
		return usageErr("status", "%v", err)
	}
	pools, err := cf.openPools()
	if err != nil {
		return usageErr("status", "%v", err)
	}
	defer closePools(pools)

	// A node is asked once, so it may take longer than a lock's node
	// timeout; but a frozen node must not hang the command.
	r := collect(context.Background(), pools, pos[0], max(10*cf.nodeTimeout, time.Second))
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printTable(os.Stdout, r)
	}
	if r.Verdict == verdictUnknown {
		return exitError
	}
	return exitOK
}

// collect asks every node in parallel, each within d, and judges the answers.
func collect(ctx context.Context, pools []pool.Pool, name string, d time.Duration) statusReport {
	r := statusReport{Name: name, Nodes: make([]nodeStatus, len(pools)), Quorum: len(pools)/2 + 1} // A5: Q from the configured N
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Go(func() { r.Nodes[i] = queryNode(ctx, p, name, d) })
	}
	wg.Wait()
	r.Verdict = verdict(r.Nodes, r.Quorum)
	return r
}

// queryNode reads one node's view of lock name: the connection bounded by
// the dial timeout, then the round trip by d.
func queryNode(ctx context.Context, p pool.Pool, name string, d time.Duration) nodeStatus {
	ns := nodeStatus{Addr: p.Addr()}
	reply, err := redis.Values(query(ctx, p, d, "EVAL", statusScript, 2, redlock.LockKey(name), redlock.CounterKey(name)))
	if err == nil && len(reply) != 3 {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	if err != nil {
		msg := oneLine(err.Error())
		ns.Error = &msg
		return ns
	}
	ns.Reachable = true
	if v, ok := reply[0].([]byte); ok {
		ns.value = string(v)
		short := shorten(ns.value)
		ttl, _ := reply[1].(int64)
		ns.Holder, ns.TTLms = &short, &ttl
	}
	if c, ok := reply[2].([]byte); ok {
		if n, err := strconv.ParseInt(string(c), 10, 64); err == nil {
			ns.Counter = &n
		}
	}
	return ns
}

// query runs one command on the node. Opening the connection is bounded by
// the pool's dial timeout, whose error says what did not complete in time
// (the TCP connect, a TLS handshake, AUTH), with a deadline past it as a
// backstop; the round trip is bounded by d.
func query(ctx context.Context, p pool.Pool, d time.Duration, cmd string, args ...any) (any, error) {
	gctx, cancel := context.WithTimeout(ctx, 2*dialTimeout)
	defer cancel()
	c, err := p.Get(gctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	qctx, qcancel := context.WithTimeout(ctx, d)
	defer qcancel()
	return redis.DoContext(c, qctx, cmd, args...)
}

// verdict judges the nodes' answers against the quorum q.
func verdict(nodes []nodeStatus, q int) string {
	answered := 0
	count := map[string]int{}
	for _, n := range nodes {
		if n.Reachable {
			answered++
			if n.value != "" {
				count[n.value]++
			}
		}
	}
	for _, c := range count {
		if c >= q {
			return verdictHeld
		}
	}
	switch {
	case answered < q:
		return verdictUnknown
	case len(count) == 0:
		return verdictFree
	}
	return verdictSplit
}

// shorten returns the first 8 characters of a holder value and "…".
func shorten(v string) string {
	if r := []rune(v); len(r) > 8 {
		return string(r[:8]) + "…"
	}
	return v
}

// printTable prints the verdict, then one row per node.
func printTable(w io.Writer, r statusReport) {
	answered := 0
	for _, n := range r.Nodes {
		if n.Reachable {
			answered++
		}
	}
	fmt.Fprintf(w, "lock %q: %s (%d of %d nodes answered, quorum %d)\n", r.Name, r.Verdict, answered, len(r.Nodes), r.Quorum)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREACHABLE\tHOLDER\tTTL\tCOUNTER\tERROR")
	for _, n := range r.Nodes {
		reachable, holder, ttl, counter, errText := "yes", "-", "-", "-", ""
		if !n.Reachable {
			reachable = "no"
		}
		if n.Holder != nil {
			holder = *n.Holder
		}
		if n.TTLms != nil {
			ttl = (time.Duration(*n.TTLms) * time.Millisecond).String()
			if *n.TTLms < 0 {
				ttl = "no expiry"
			}
		}
		if n.Counter != nil {
			counter = strconv.FormatInt(*n.Counter, 10)
		}
		if n.Error != nil {
			errText = *n.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Addr, reachable, holder, ttl, counter, errText)
	}
	tw.Flush()
}
