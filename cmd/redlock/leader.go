package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// leaderOpts is a parsed `redlock leader` command line.
type leaderOpts struct {
	conn  connFlags
	json  bool
	watch bool
}

// leaderLine is one line of --json output: the leader, or none.
type leaderLine struct {
	Election string `json:"election"`
	Leader   bool   `json:"leader"`
	Value    string `json:"value"`
	Term     uint64 `json:"term"`
}

func leaderFlagSet(o *leaderOpts) *flag.FlagSet {
	fl := newFlagSet("leader")
	o.conn.register(fl)
	fl.BoolVar(&o.json, "json", false, "")
	fl.BoolVar(&o.watch, "watch", false, "")
	return fl
}

// runLeader is `redlock leader [flags] NAME`: the current leader of
// election NAME, as a quorum of the nodes reports it (ALGORITHM.md V4), or
// with --watch each change (V6) until interrupted.
func runLeader(args []string) int {
	var o leaderOpts
	fl := leaderFlagSet(&o)
	cf := &o.conn
	name, code, ok := parseNamed("leader", "election", fl, cf, args)
	if !ok {
		return code
	}
	pools, err := cf.openPools()
	if err != nil {
		return usageErr("leader", "%v", err)
	}
	defer closePools(pools)
	client, err := redlock.New(pools, redlock.WithNodeTimeout(cf.nodeTimeout))
	if err != nil {
		return usageErr("leader", "%v", libMsg(err))
	}
	defer client.Close()
	e, err := client.Election(name)
	if err != nil {
		return usageErr("leader", "%v", libMsg(err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if o.watch {
		for l := range e.Observe(ctx) {
			printLeader(os.Stdout, e.Name(), l, o.json)
		}
		return exitOK
	}
	l, err := currentLeader(ctx, e, max(10*cf.nodeTimeout, time.Second))
	var nle *redlock.NoLeaderError
	switch {
	case err == nil:
		printLeader(os.Stdout, e.Name(), l, o.json)
		return exitOK
	case errors.As(err, &nle) && nle.Failed < nle.N-nle.Quorum+1 && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		printLeader(os.Stdout, e.Name(), redlock.Leader{}, o.json)
		return exitNotAcquired
	}
	errorf("leader %q: %s", e.Name(), libMsg(err))
	return exitError
}

// currentLeader asks for the leader until it is known, a quorum says
// nobody leads, or d has passed: a fresh connection's first request can
// miss the node timeout, and a hand-over in progress settles within a
// round trip or two. It returns Leader's last answer.
func currentLeader(ctx context.Context, e *redlock.Election, d time.Duration) (redlock.Leader, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		l, err := e.Leader(ctx)
		var nle *redlock.NoLeaderError
		if err == nil || !errors.As(err, &nle) || nle.Empty >= nle.Quorum {
			return l, err
		}
		select {
		case <-ctx.Done():
			return l, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// printLeader prints one line: `leader "VALUE" term T` or `no leader`, or
// the same as one JSON object. The value is the leader's public value.
func printLeader(w io.Writer, election string, l redlock.Leader, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(leaderLine{Election: election, Leader: l.Token != 0, Value: l.Value, Term: l.Token})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	if l.Token == 0 {
		fmt.Fprintln(w, "no leader")
		return
	}
	fmt.Fprintf(w, "leader %q term %d\n", l.Value, l.Token)
}
