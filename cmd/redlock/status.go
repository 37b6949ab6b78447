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
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// nodeStatus is one node's view of the lock. Absent values are null in JSON.
// It never holds the key's value: the library's read returns the holder
// part and a fingerprint, never the secret (ALGORITHM.md M2), which would
// let whoever reads the output release or extend the lock.
type nodeStatus struct {
	Addr        string          `json:"addr"`
	Reachable   bool            `json:"reachable"`
	Error       *string         `json:"error"`
	State       *string         `json:"state"`       // free, held, held-no-holder, reserved, not-a-lock
	Holder      *redlock.Holder `json:"holder"`      // host, pid, label, since: when state is held
	Fingerprint *string         `json:"fingerprint"` // 8 hex digits of SHA-1 of the value: equal on nodes holding one acquisition
	TTLms       *int64          `json:"ttl_ms"`      // PTTL; -1: the key has no expiry
	Counter     *int64          `json:"counter"`     // fencing counter, null when none
}

// statusReport is what status prints, and unlock --force before deleting.
type statusReport struct {
	Name        string          `json:"name"`
	Nodes       []nodeStatus    `json:"nodes"`
	Verdict     string          `json:"verdict"`
	Quorum      int             `json:"quorum"`
	Holder      *redlock.Holder `json:"holder"`      // the quorum's holder, or null
	Fingerprint *string         `json:"fingerprint"` // the quorum's value, or null
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
	name, code, ok := parseNameCommand("status", fl, &o.conn, args)
	if !ok {
		return code
	}
	client, conns, done, code := o.conn.readClient("status")
	if client == nil {
		return code
	}
	defer done()
	st, err := client.Holder(context.Background(), name)
	if err != nil {
		errorf("lock %q: %s", name, libMsg(err))
		return exitError
	}
	r := report(st, conns)
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printTable(os.Stdout, r)
	}
	if st.Verdict == redlock.VerdictUnknown {
		return exitError
	}
	return exitOK
}

// parseNameCommand parses the command line of a command that takes one
// NAME and no command (status, unlock). On a bad one it prints one line and
// returns ok false with the exit code (exitOK after --help).
func parseNameCommand(cmd string, fl *flag.FlagSet, cf *connFlags, args []string) (name string, code int, ok bool) {
	return parseNamed(cmd, "lock", fl, cf, args)
}

// parseNamed is parseNameCommand for a NAME of what ("lock", "election"):
// a lock name is checked here; an election's by the library, which knows
// its longer prefix.
func parseNamed(cmd, what string, fl *flag.FlagSet, cf *connFlags, args []string) (name string, code int, ok bool) {
	pos, command, dashdash, code, ok := parseCommand(cmd, fl, args)
	if !ok {
		return "", code, false
	}
	cf.resolveEnv(fl)
	switch {
	case len(pos) == 0:
		return "", usageErr(cmd, "missing %s NAME: redlock %s [flags] NAME", what, cmd), false
	case len(pos) > 1 || dashdash || len(command) > 0:
		return "", usageErr(cmd, "unexpected arguments after NAME %q: %s takes one NAME", pos[0], cmd), false
	}
	if what == "lock" {
		if err := checkName(pos[0]); err != nil {
			return "", usageErr(cmd, "%v", err), false
		}
	}
	return pos[0], exitOK, true
}

// readWait is how long status, unlock and check wait for one node's answer
// with --node-timeout tau: a node is asked once, on a new connection, so
// it may take longer than a lock's node timeout; but a frozen node must not
// hang the command.
func readWait(tau time.Duration) time.Duration { return max(10*tau, time.Second) }

// readClient opens the pools and a library client whose node timeout is
// readWait's, for the commands that take no lock, and starts opening a
// connection to every node (connCheck: the reads then find them open, and
// a node that cannot be connected to is reported with the reason, a TLS
// handshake that timed out say, not as a node timeout). It returns nil and
// the exit code after printing why when it cannot; done closes both.
func (c *connFlags) readClient(cmd string, opts ...redlock.Option) (client *redlock.Client, conns *connCheck, done func(), code int) {
	pools, err := c.openPools()
	if err != nil {
		return nil, nil, nil, usageErr(cmd, "%v", err)
	}
	d := readWait(c.nodeTimeout)
	// The client takes no lock: its TTL only has to leave room for the
	// node timeout, as New checks.
	ttl := max(redlock.DefaultTTL, (10 * d).Round(time.Millisecond))
	client, err = redlock.New(pools, append([]redlock.Option{redlock.WithNodeTimeout(d), redlock.WithTTL(ttl)}, opts...)...)
	if err != nil {
		closePools(pools)
		if errors.Is(err, redlock.ErrInvalidOption) {
			return nil, nil, nil, usageErr(cmd, "%s", libMsg(err))
		}
		errorf("%s", libMsg(err))
		return nil, nil, nil, exitError
	}
	conns = checkConnections(pools)
	return client, conns, func() { conns.wg.Wait(); client.Close(); closePools(pools) }, exitOK
}

// report turns the library's read into what status prints. A node that
// timed out while its connection could not be opened is reported with the
// connection's error.
func report(st *redlock.HolderStatus, conns *connCheck) statusReport {
	r := statusReport{Name: st.Name, Nodes: make([]nodeStatus, len(st.Nodes)), Verdict: string(st.Verdict), Quorum: st.Quorum, Holder: st.Holder}
	if st.Fingerprint != "" {
		r.Fingerprint = &st.Fingerprint
	}
	for i, n := range st.Nodes {
		ns := &r.Nodes[i]
		ns.Addr = n.Addr
		if n.Err != nil {
			msg := oneLine(n.Err.Error())
			var ne *redlock.NodeError
			if errors.As(n.Err, &ne) {
				msg = oneLine(ne.Err.Error())
			}
			if cerr := conns.failed(n.Addr); cerr != nil && errors.Is(n.Err, redlock.ErrNodeTimeout) {
				msg = oneLine("cannot connect: " + cerr.Error())
			}
			ns.Error = &msg
			continue
		}
		ns.Reachable = true
		state := string(n.State)
		ns.State, ns.Holder = &state, n.Holder
		if n.Fingerprint != "" {
			fp := n.Fingerprint
			ns.Fingerprint = &fp
		}
		if n.State != redlock.KeyFree {
			ms := n.TTL.Milliseconds()
			if n.TTL < 0 {
				ms = -1
			}
			ns.TTLms = &ms
		}
		if n.Counter >= 0 {
			ctr := n.Counter
			ns.Counter = &ctr
		}
	}
	return r
}

// since formats a holder's time: local, to the millisecond, with its offset.
func since(t time.Time) string { return t.Local().Format("2006-01-02T15:04:05.000Z07:00") }

// holderText is the HOLDER column of a node.
func holderText(n nodeStatus) string {
	switch {
	case n.Holder != nil:
		return n.Holder.String()
	case n.State == nil:
		return "-"
	}
	switch redlock.KeyState(*n.State) {
	case redlock.KeyNoHolder:
		return "(not recorded)"
	case redlock.KeyReserved:
		return "(next in line)"
	case redlock.KeyOther:
		return "(not a lock)"
	}
	return "-"
}

// printTable prints the verdict and the quorum's holder, then one row per
// node.
func printTable(w io.Writer, r statusReport) {
	answered := 0
	for _, n := range r.Nodes {
		if n.Reachable {
			answered++
		}
	}
	fmt.Fprintf(w, "lock %q: %s (%d of %d nodes answered, quorum %d)\n", r.Name, r.Verdict, answered, len(r.Nodes), r.Quorum)
	if r.Holder != nil {
		fmt.Fprintf(w, "holder: %s, since %s\n", r.Holder, since(r.Holder.Since))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tHOLDER\tSINCE\tFINGERPRINT\tTTL\tCOUNTER\tERROR")
	for _, n := range r.Nodes {
		state, when, fp, ttl, counter, errText := "unreachable", "-", "-", "-", "-", ""
		if n.State != nil {
			state = *n.State
		}
		if n.Holder != nil {
			when = since(n.Holder.Since)
		}
		if n.Fingerprint != nil {
			fp = *n.Fingerprint
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Addr, state, holderText(n), when, fp, ttl, counter, errText)
	}
	tw.Flush()
}

// query runs one command on the node. Opening the connection is bounded by
// the pool's dial timeout, whose error says what did not complete in time
// (the TCP connect, a TLS handshake, AUTH), with a deadline past it as a
// backstop; the round trip is bounded by d. The demo reads your nodes with
// it.
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

// failed returns why the connection to node addr could not be opened, or
// nil; it waits for the dials still running (each within the dial timeout).
func (cc *connCheck) failed(addr string) error {
	if cc == nil {
		return nil
	}
	cc.wg.Wait()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.errs[addr]
}
