package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/redlock"
)

// The kinds of finding of check, worst first, and its verdicts.
const (
	findingUnsafe   = "unsafe"   // breaks a deployment rule (N1-N3): exit 4
	findingError    = "error"    // could not be checked: exit 4
	findingDegraded = "degraded" // safe, but waiters poll or are served in no order: exit 0
	findingOK       = "ok"

	checkUnchecked = "unchecked" // the verdict when a node could not be checked
)

// finding is one thing check found on one node.
type finding struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// checkNode is one node's result.
type checkNode struct {
	Addr     string    `json:"addr"`
	Status   string    `json:"status"` // its worst finding's kind, or ok
	Findings []finding `json:"findings"`
}

// checkReport is what check prints.
type checkReport struct {
	Verdict string      `json:"verdict"` // ok, degraded, unsafe or unchecked
	Fencing bool        `json:"fencing"` // persistence was checked (N2)
	Nodes   []checkNode `json:"nodes"`
}

// checkOpts is a parsed `redlock check` command line.
type checkOpts struct {
	conn    connFlags
	fencing bool
	json    bool
}

// checkFlagSet returns the flags of check, which set o.
func checkFlagSet(o *checkOpts) *flag.FlagSet {
	fl := newFlagSet("check")
	o.conn.register(fl)
	fl.BoolVar(&o.fencing, "fencing", false, "")
	fl.BoolVar(&o.json, "json", false, "")
	return fl
}

// runCheck is `redlock check [flags]`: the library's Client.Check on every
// node. Exit 0 when the deployment keeps the rules, degraded included (the
// lock stays safe: R5, L8); 4 when a node breaks one, or could not be
// checked (a node that cannot be read cannot be vouched for).
func runCheck(args []string) int {
	var o checkOpts
	fl := checkFlagSet(&o)
	pos, _, dashdash, code, ok := parseCommand("check", fl, args)
	if !ok {
		return code
	}
	o.conn.resolveEnv(fl)
	if len(pos) > 0 || dashdash {
		extra := "--"
		if len(pos) > 0 {
			extra = pos[0]
		}
		return usageErr("check", "unexpected argument %q: check takes no NAME", extra)
	}
	var opts []redlock.Option
	if o.fencing {
		opts = append(opts, redlock.WithFencing())
	}
	client, _, done, code := o.conn.readClient("check", opts...)
	if client == nil {
		return code
	}
	defer done()
	r := checkResult(client.Nodes(), client.Check(context.Background()), o.fencing)
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printCheck(os.Stdout, r)
	}
	if r.Verdict == findingOK || r.Verdict == findingDegraded {
		return exitOK
	}
	return exitError
}

// checkResult sorts Check's error into findings per node.
func checkResult(addrs []string, err error, fencing bool) checkReport {
	r := checkReport{Fencing: fencing, Nodes: make([]checkNode, len(addrs))}
	byAddr := map[string]*checkNode{}
	for i, a := range addrs {
		r.Nodes[i] = checkNode{Addr: a, Status: findingOK, Findings: []finding{}}
		byAddr[a] = &r.Nodes[i]
	}
	var errs []error
	var me *multierror.Error
	switch {
	case errors.As(err, &me):
		errs = me.Errors
	case err != nil:
		errs = []error{err}
	}
	for _, e := range errs {
		f := finding{Kind: findingError, Message: oneLine(libMsg(e))}
		var ne *redlock.NodeError
		node := (*checkNode)(nil)
		if errors.As(e, &ne) {
			node, f.Message = byAddr[ne.Addr], oneLine(libMsg(ne.Err))
		}
		switch {
		case errors.Is(e, redlock.ErrUnsafeDeployment):
			f.Kind = findingUnsafe
			f.Message = strings.TrimPrefix(f.Message, strings.TrimPrefix(redlock.ErrUnsafeDeployment.Error(), "redlock: ")+": ")
		case errors.Is(e, redlock.ErrDegraded):
			f.Kind = findingDegraded
			f.Message = strings.TrimPrefix(f.Message, strings.TrimPrefix(redlock.ErrDegraded.Error(), "redlock: ")+": ")
		}
		if node == nil { // not about one node: count it against all
			for i := range r.Nodes {
				r.Nodes[i].add(f)
			}
			continue
		}
		node.add(f)
	}
	r.Verdict = findingOK
	for _, n := range r.Nodes {
		if rank(n.Status) > rank(r.Verdict) {
			r.Verdict = n.Status
		}
	}
	if r.Verdict == findingError {
		r.Verdict = checkUnchecked
	}
	return r
}

// add records f, and makes it the node's status if it is worse.
func (n *checkNode) add(f finding) {
	n.Findings = append(n.Findings, f)
	if rank(f.Kind) > rank(n.Status) {
		n.Status = f.Kind
	}
}

// rank orders the kinds of finding, worst highest.
func rank(kind string) int {
	return map[string]int{findingOK: 0, findingDegraded: 1, findingError: 2, findingUnsafe: 3}[kind]
}

// printCheck prints one row per finding (one "ok" row for a node with
// none), then the verdict.
func printCheck(w io.Writer, r checkReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tFINDING")
	for _, n := range r.Nodes {
		if len(n.Findings) == 0 {
			fmt.Fprintf(tw, "%s\tok\t-\n", n.Addr)
		}
		for _, f := range n.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Addr, f.Kind, f.Message)
		}
	}
	tw.Flush()
	persistence := "persistence not checked: pass --fencing if you use fencing tokens"
	if r.Fencing {
		persistence = "persistence checked for fencing"
	}
	switch r.Verdict {
	case findingOK:
		fmt.Fprintf(w, "the deployment keeps the rules (%s)\n", persistence)
	case findingDegraded:
		fmt.Fprintf(w, "the deployment keeps the rules, degraded: locks are safe, but waiters are woken late or served in no order (%s)\n", persistence)
	case findingUnsafe:
		fmt.Fprintln(w, "the deployment breaks the rules: two holders can overlap (ALGORITHM.md N1-N3)")
	default:
		fmt.Fprintln(w, "the deployment could not be checked: a node did not answer or refused to be read")
	}
}
