package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/redlock"
)

// unlockOpts is a parsed `redlock unlock` command line.
type unlockOpts struct {
	conn       connFlags
	force, yes bool
}

// unlockFlagSet returns the flags of unlock, which set o.
func unlockFlagSet(o *unlockOpts) *flag.FlagSet {
	fl := newFlagSet("unlock")
	o.conn.register(fl)
	fl.BoolVar(&o.force, "force", false, "")
	fl.BoolVar(&o.yes, "yes", false, "")
	return fl
}

// runUnlock is `redlock unlock --force [--yes] [flags] NAME`: the
// operator's break-glass (ALGORITHM.md M3). It shows who holds the lock,
// then, only with --yes, removes it on every node.
func runUnlock(args []string) int {
	var o unlockOpts
	fl := unlockFlagSet(&o)
	name, code, ok := parseNameCommand("unlock", fl, &o.conn, args)
	if !ok {
		return code
	}
	if !o.force {
		// A lock is released by its holder (run releases it when COMMAND
		// exits); removing it under a holder is a different act, and says
		// so on the command line.
		return usageErr("unlock", "unlock %q needs --force: it breaks the lock under its holder, who is not told", name)
	}
	client, conns, done, code := o.conn.readClient("unlock")
	if client == nil {
		return code
	}
	defer done()
	ctx := context.Background()
	st, err := client.Holder(ctx, name)
	if err != nil {
		errorf("lock %q: %s", name, libMsg(err))
		return exitError
	}
	printTable(os.Stdout, report(st, conns))
	locked := 0 // nodes with a lock on them (a reservation is none)
	for _, n := range st.Nodes {
		if n.Err == nil && n.State != redlock.KeyFree && n.State != redlock.KeyReserved {
			locked++
		}
	}
	if !o.yes {
		if locked == 0 {
			return usageErr("unlock", "nothing deleted: no node that answered holds lock %q; --yes would delete nothing", name)
		}
		return usageErr("unlock", "nothing deleted: --yes deletes lock %q on the %d nodes that hold it, and its holder, not told, may go on until its deadline", name, locked)
	}

	removed, err := client.ForceUnlock(ctx, name)
	failed := 0
	var me *multierror.Error
	if errors.As(err, &me) {
		failed = len(me.Errors)
	}
	if err != nil {
		errorf("warning: %s", libMsg(err))
	}
	switch {
	case removed > 0:
		fmt.Printf("deleted lock %q on %d of %d nodes; its holder was not told and may act until its deadline: only fencing tokens stop it\n", name, removed, len(st.Nodes))
		return exitOK
	case err != nil && (me == nil || len(st.Nodes)-failed < st.Quorum):
		errorf("lock %q: fewer than a quorum of nodes answered; nothing deleted", name)
		return exitError
	}
	errorf("lock %q was not held on any node that answered: nothing deleted", name)
	return exitNothingHeld
}
