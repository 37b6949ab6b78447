// Command redlock runs a command while holding a Redlock lock taken on N
// independent Redis masters, and shows the state of a lock on those nodes.
//
//	redlock run [flags] NAME -- COMMAND [ARGS...]
//	redlock status [flags] NAME
//
// Run `redlock help` for the flags and the exit codes.
package main

import (
	"fmt"
	"os"
	"strings"
)

// Exit codes. They are the contract with scripts and schedulers: keep them
// in step with the EXIT CODES table of usage.
const (
	exitOK          = 0
	exitNotAcquired = 1
	exitUsage       = 2
	exitLost        = 3
	exitError       = 4
	exitCannotExec  = 126 // as POSIX shells, env and timeout
	exitNotFound    = 127
)

const usage = `redlock: run a command while holding a Redlock lock on N independent Redis masters

USAGE
  redlock run [flags] NAME -- COMMAND [ARGS...]
  redlock status [flags] NAME
  redlock demo [--duration 20s] [--workers 8] [--nodes 5] [--addrs ...] [--seed N] [--json]
  redlock help

run     Take lock NAME on a quorum of the nodes, run COMMAND while holding it
        (extended about every ttl/3), release it when COMMAND exits, and exit
        with COMMAND's status. COMMAND runs in its own process group with
        stdin/stdout/stderr inherited; it sees REDLOCK_NAME, and REDLOCK_TOKEN
        with --fencing. If the lock is lost while COMMAND runs, its group gets
        SIGTERM, then SIGKILL after --grace. SIGINT, SIGTERM and SIGHUP sent to
        redlock are forwarded to the group; the lock is released once it exits.
status  Show each node's view of lock NAME (holder, remaining TTL, fencing
        counter) and a verdict: "held by a quorum", "free", "split", or
        "unknown" when fewer than a quorum of nodes answered.
demo    The project's job in one command. Without --addrs it starts --nodes
        redis-server processes on loopback (AOF, appendfsync always); --workers
        workers contend for 3 locks with fencing on and write to a fenced
        in-memory resource while faults are injected (freeze a node, kill one
        and restart it after the TTL, cut one off, slow one down), never more
        than N-Q nodes at once. A live line each second, a summary table at the
        end; exit 0 only with no overlapping holds and no stale write accepted.
        With --addrs (your nodes) it only cuts off and slows nodes, through a
        local proxy. --seed replays a fault schedule.

FLAGS (run and status)
  --addrs HOST:PORT,...  the Redis masters, comma-separated (default $REDLOCK_ADDRS)
  --password PASSWORD    AUTH password (default $REDLOCK_PASSWORD)
  --tls                  connect with TLS, verifying against the system roots
  --node-timeout DUR     deadline of one request to one node (default 50ms);
                         status waits max(10x this, 1s) per node
FLAGS (run)
  --ttl DUR              lock time to live, whole milliseconds (default 10s)
  --wait DUR             how long to wait for the lock; 0: one attempt (default 0)
  --fencing              take a fencing token; COMMAND sees it as REDLOCK_TOKEN
  --grace DUR            SIGTERM to SIGKILL delay when the lock is lost (default 5s)
FLAGS (status)
  --json                 print one JSON object instead of a table
Durations are Go durations: 300ms, 10s, 2m.

EXIT CODES
  0      ok (run: COMMAND exited 0)
  1      run: lock not acquired (held elsewhere, or too many nodes failing)
  2      usage error: bad flag, value, name or command line; nothing was started
  3      run: lock lost while COMMAND ran; COMMAND was stopped
  4      Redis or unexpected error; status: fewer than a quorum of nodes answered;
         demo: an overlapping hold or an accepted stale write was seen
  126    run: COMMAND could not be executed (nothing was locked)
  127    run: COMMAND not found (nothing was locked)
  other  run: COMMAND's own exit status; 128+N if it died from signal N,
         or if redlock got signal N while waiting for the lock
`

func main() { os.Exit(dispatch(os.Args[1:])) }

// dispatch runs the command named by args[0] and returns the exit code.
func dispatch(args []string) int {
	if len(args) == 0 {
		return usageErr("", "missing command: run, status, demo or help")
	}
	switch args[0] {
	case "run":
		return runRun(args[1:])
	case "status":
		return runStatus(args[1:])
	case "demo":
		return runDemo(args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return exitOK
	}
	return usageErr("", "unknown command %q: want run, status, demo or help", args[0])
}

// usageErr prints one line naming the bad input and returns exitUsage. One
// line, not a usage dump: the bad value stays visible in a scheduler's log.
func usageErr(cmd, format string, a ...any) int {
	prefix := "redlock"
	if cmd != "" {
		prefix += " " + cmd
	}
	fmt.Fprintf(os.Stderr, "%s: %s (see 'redlock help')\n", prefix, oneLine(fmt.Sprintf(format, a...)))
	return exitUsage
}

// errorf prints one line on stderr.
func errorf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "redlock: %s\n", oneLine(fmt.Sprintf(format, a...)))
}

// oneLine keeps a message (node errors can hold newlines) on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// libMsg returns a library error's text without its "redlock: " prefix, which
// our own prefix already says.
func libMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "redlock: ")
}
