package main

import (
	"context"
	"errors"
	"flag"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// forwarded are the signals redlock passes on to the command's process
// group instead of dying from them: the command is in a group of its own
// (so a terminal's Ctrl-C reaches only redlock), and redlock must outlive it
// to release the lock.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// runOpts is a parsed `redlock run` command line.
type runOpts struct {
	conn        connFlags
	wait, grace time.Duration
	fencing     bool
	holder      string // --holder: the label recorded with the lock (M1)
	permits     int    // 1: lock NAME; K > 1: one of K permits of semaphore NAME (S1)
	name        string
	command     []string // argv, as typed after "--"
	path        string   // command[0] resolved on $PATH
}

// runRun is `redlock run [flags] NAME -- COMMAND [ARGS...]`.
func runRun(args []string) int {
	o, code, ok := parseRun(args)
	if !ok {
		return code
	}
	pools, err := o.conn.openPools()
	if err != nil {
		return usageErr("run", "%v", err)
	}
	defer closePools(pools)
	client, err := redlock.New(pools, redlock.WithTTL(o.conn.ttl), redlock.WithNodeTimeout(o.conn.nodeTimeout))
	if errors.Is(err, redlock.ErrInvalidOption) {
		// The library names its options (TTL, node timeout); say which
		// flags set them.
		return usageErr("run", "--ttl %v with --node-timeout %v: %s", o.conn.ttl, o.conn.nodeTimeout, libMsg(err))
	} else if err != nil {
		errorf("%s", libMsg(err))
		return exitError
	}
	defer client.Close() // before the pools (defers run last-in first-out)
	// Resolved before locking: a typo in the command must not take the lock.
	if o.path, err = exec.LookPath(o.command[0]); err != nil {
		errorf("cannot run %q: %v; the lock was not taken", o.command[0], err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotExec
	}

	// From here on, a forwarded signal is caught: before the command
	// exists it ends the wait for the lock; once it exists, it goes to the
	// command's group (sigc holds it meanwhile).
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := checkConnections(pools)
	lock, code := o.acquire(ctx, cancel, client, sigc, conns)
	if lock == nil {
		return code
	}
	code = o.runLocked(lock, sigc)
	o.release(ctx, lock, code == exitLost)
	return code
}

// runFlagSet returns the flags of run, which set o.
func runFlagSet(o *runOpts) *flag.FlagSet {
	fl := newFlagSet("run")
	o.conn.register(fl)
	o.conn.registerTTL(fl)
	// One attempt by default, unlike flock or etcdctl lock: run is for a
	// job that must run on one machine, such as a cron entry on every
	// machine, which waiting would run once per machine (flagWait).
	fl.DurationVar(&o.wait, "wait", 0, "")
	fl.DurationVar(&o.grace, "grace", 5*time.Second, "")
	fl.BoolVar(&o.fencing, "fencing", false, "")
	fl.StringVar(&o.holder, "holder", "", "")
	fl.IntVar(&o.permits, "permits", 1, "")
	return fl
}

// parseRun parses the command line; when it is bad it prints one line and
// returns ok false with exitUsage.
func parseRun(args []string) (o *runOpts, code int, ok bool) {
	o = &runOpts{}
	fl := runFlagSet(o)
	pos, command, dashdash, code, ok := parseCommand("run", fl, args)
	if !ok {
		return nil, code, false
	}
	o.conn.resolveEnv(fl)
	switch {
	case len(pos) == 0:
		return nil, usageErr("run", "missing lock NAME: redlock run [flags] NAME -- COMMAND [ARGS...]"), false
	case !dashdash:
		return nil, usageErr("run", "missing -- between NAME %q and the command", pos[0]), false
	case len(pos) > 1:
		return nil, usageErr("run", "unexpected argument %q after NAME %q: the command goes after --", pos[1], pos[0]), false
	case len(command) == 0:
		return nil, usageErr("run", "missing command after --"), false
	case o.wait < 0:
		return nil, usageErr("run", "--wait %v: must be >= 0", o.wait), false
	case o.grace < 0:
		return nil, usageErr("run", "--grace %v: must be >= 0", o.grace), false
	case o.permits < 1 || o.permits > redlock.MaxPermits: // S6
		return nil, usageErr("run", "--permits %d: must be in [1, %d]", o.permits, redlock.MaxPermits), false
	}
	if err := checkName(pos[0]); err != nil {
		return nil, usageErr("run", "%v", err), false
	}
	o.name, o.command = pos[0], command
	return o, exitOK, true
}

// acquire takes the lock with auto-extension: one attempt with --wait 0,
// else attempts until --wait has passed. A forwarded signal ends the wait
// (cancel): it then returns nil and 128+signal. On failure it prints one
// line and returns nil and the exit code.
func (o *runOpts) acquire(ctx context.Context, cancel context.CancelFunc, client *redlock.Client, sigc <-chan os.Signal, conns *connCheck) (*redlock.Lock, int) {
	// --holder is checked with the first attempt, before anything is sent:
	// a bad label is a usage error (ErrInvalidOption, below).
	opts := []redlock.Option{redlock.WithAutoExtend(), redlock.WithHolder(o.holder)}
	if o.fencing {
		opts = append(opts, redlock.WithFencing())
	}
	lockCtx := ctx
	if o.wait > 0 {
		var stop context.CancelFunc
		lockCtx, stop = context.WithTimeout(ctx, o.wait)
		defer stop()
		// The deadline bounds the wait, not a count of attempts.
		opts = append(opts, redlock.WithTries(math.MaxInt))
	}
	var got os.Signal
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case got = <-sigc:
			cancel()
		case <-done:
		}
	}()
	l, err := o.take(lockCtx, client, opts)
	close(done)
	<-watched
	switch {
	case got != nil:
		if l != nil {
			o.release(ctx, l, false)
		}
		errorf("%v: gave up waiting for lock %q; the command was not started", got, o.name)
		return nil, 128 + int(got.(syscall.Signal))
	case err == nil:
		return l, exitOK
	case errors.Is(err, redlock.ErrInvalidOption):
		return nil, usageErr("run", "%s", libMsg(err))
	case errors.Is(err, redlock.ErrNotAcquired) && o.wait > 0 && errors.Is(err, context.DeadlineExceeded):
		errorf("lock %q not acquired within --wait %v: %s", o.name, o.wait, conns.explain(err))
		return nil, exitNotAcquired
	case errors.Is(err, redlock.ErrNotAcquired):
		errorf("%s", conns.explain(err))
		return nil, exitNotAcquired
	}
	errorf("lock %q: %s", o.name, conns.explain(err))
	return nil, exitError
}

// take makes one attempt (--wait 0) or waits: for lock NAME, or with
// --permits K > 1 for one of the K permits of semaphore NAME (S1-S4).
func (o *runOpts) take(ctx context.Context, client *redlock.Client, opts []redlock.Option) (*redlock.Lock, error) {
	if o.permits == 1 {
		if o.wait == 0 {
			return client.TryLock(ctx, o.name, opts...)
		}
		return client.Lock(ctx, o.name, opts...)
	}
	sem, err := client.Semaphore(o.name, o.permits)
	if err != nil {
		return nil, err
	}
	if o.wait == 0 {
		return sem.TryAcquire(ctx, opts...)
	}
	return sem.Acquire(ctx, opts...)
}

// runLocked runs the command while l is held and returns redlock's exit code.
func (o *runOpts) runLocked(l *redlock.Lock, sigc <-chan os.Signal) int {
	cmd := &exec.Cmd{
		Path:        o.path,
		Args:        o.command,
		Env:         childEnv(os.Environ(), o.name, l.Token(), o.fencing),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: childAttr(),
	}
	if err := cmd.Start(); err != nil {
		errorf("cannot run %q: %v", o.command[0], err)
		return exitCannotExec
	}
	return supervise(cmd, l, sigc, o.grace)
}

// release unlocks l on a context that no signal can cancel (a signal already
// forwarded must not cut the release short), bounded in time: a release
// that fails leaves keys that expire with their TTL. It warns when the
// release failed, unless the loss was reported already.
func (o *runOpts) release(ctx context.Context, l *redlock.Lock, lost bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second+2*o.conn.nodeTimeout)
	defer cancel()
	if err := l.Unlock(ctx); err != nil && !lost {
		errorf("warning: %s", libMsg(err))
	}
}
