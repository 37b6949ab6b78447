package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// The help. `redlock help` prints all of it; `redlock COMMAND --help` (and
// `redlock help COMMAND`) prints one command's part: its usage line, what
// it does, its flags and its exit codes. Both are built from the pieces
// below, so that they cannot disagree; TestHelp checks that each shows
// every flag its command parses, and no other command's.

const helpTitle = "redlock: run a command while holding a Redlock lock on N independent Redis masters\n"

// subcommand is one command's part of the help.
type subcommand struct {
	name  string
	usage string // its usage line, without "  "
	title string // one line: what it is
	about string // what it does, unindented lines
	flags []string
	exits string // its exit codes, lines indented by two spaces
}

// Flag lines, two spaces in, descriptions at column 25.
const (
	flagAddrs = `  --addrs ADDR,...       the Redis masters, comma-separated (default
                         $REDLOCK_ADDRS); each HOST:PORT or a URL,
                         redis://[USER@]HOST[:PORT][/DB], rediss:// for TLS;
                         use an odd number, 3 or 5: an even N tolerates no
                         more failed nodes than N-1 (a warning says so)
`
	flagUser = `  --user USER            ACL user, for the nodes whose URL names none
`
	flagPassword = `  --password PASSWORD    AUTH password (default $REDLOCK_PASSWORD); ps shows
                         it to every user: prefer $REDLOCK_PASSWORD or
                         --password-file. A password in a node's URL wins,
                         then --password-file, then --password
`
	flagPasswordFile = `  --password-file FILE   read the AUTH password from FILE (one line)
`
	flagTLS = `  --tls                  connect to HOST:PORT nodes with TLS too (rediss://
                         nodes always use it), verifying each node's
                         certificate and host name against the system roots
                         ($SSL_CERT_FILE, $SSL_CERT_DIR) or --tls-ca. The
                         handshake must complete within the dial timeout, 1s
`
	flagTLSCA = `  --tls-ca FILE          trust the CA certificates in FILE (PEM) instead of
                         the system roots
`
	flagTLSCert = `  --tls-cert FILE        present the client certificate in FILE (PEM), for
                         nodes that require one; needs --tls-key
`
	flagTLSKey = `  --tls-key FILE         the private key of --tls-cert (PEM)
`
	flagTLSServerName = `  --tls-server-name NAME
                         verify the nodes' certificates for NAME instead of
                         each node's host
`
	flagNodeTimeout = `  --node-timeout DUR     deadline of one request to one node (default 50ms)
`
	flagNodeTimeoutStatus = `  --node-timeout DUR     status waits max(10x this, 1s) for each node's answer,
                         once connected (default 50ms)
`
	flagNodeTimeoutUnlock = `  --node-timeout DUR     unlock waits max(10x this, 1s) for each node's answer,
                         once connected (default 50ms)
`
	flagNodeTimeoutCheck = `  --node-timeout DUR     not used by check, which gives each node 1s
`
	flagTTL = `  --ttl DUR              lock time to live, whole milliseconds (default 10s)
`
	flagWait = `  --wait DUR             how long to wait in line for the lock (default 0: one
                         attempt; exit 1 when the lock is held). One attempt by
                         default, unlike flock, etcdctl lock or consul lock: run
                         is for jobs that must run on one machine at a time,
                         such as the same cron entry on every machine; waiting
                         by default would run the job once per machine, in turn
`
	flagHolder = `  --holder LABEL         a label recorded with the lock, next to the host, pid
                         and time that are always recorded; redlock status shows
                         it. At most 128 bytes, no control characters; not a
                         secret: anyone who can read the nodes sees it
`
	flagFencing = `  --fencing              take a fencing token; COMMAND sees it as REDLOCK_TOKEN
`
	flagPermits = `  --permits K            hold one of K permits of semaphore NAME instead of
                         lock NAME: at most K commands run at once (default 1)
`
	flagGrace = `  --grace DUR            SIGTERM to SIGKILL delay when the lock is lost (default 5s)
`
	flagStatusJSON = `  --json                 print one JSON object instead of a table
`
	flagCheckFencing = `  --fencing              also check what fencing tokens need on every node:
                         appendonly yes and appendfsync always (N2). Without it
                         persistence is not checked: without fencing, N2 also
                         allows a node that restarts empty after the longest TTL
`
	flagForce = `  --force                required: unlock breaks the lock under its holder
`
	flagYes = `  --yes                  delete; without it, unlock only shows what it would
                         delete, and exits 2
`
	flagLeaderNodeTimeout = `  --node-timeout DUR     deadline of one request to one node (default 50ms);
                         leader asks again for up to max(10x this, 1s) while
                         nodes fail or a hand-over is under way
`
	flagLeaderJSON = `  --json                 print each answer as one JSON object:
                         {"election","leader","value","term"}
`
	flagWatch = `  --watch                follow the election: the current leader, then one
                         line per change, until interrupted
`
	flagDemoAddrs = `  --addrs HOST:PORT,...  your Redis masters, comma-separated (default
                         $REDLOCK_ADDRS, unless --nodes is given); an odd number
`
	flagDuration = `  --duration DUR         how long to run (default 20s)
`
	flagWorkers = `  --workers N            workers contending for the locks (default 8)
`
	flagNodes = `  --nodes N              start N local nodes, 1 to 15 (default 5, when neither
                         --addrs nor $REDLOCK_ADDRS gives nodes)
`
	flagSeed = `  --seed N               replay the fault schedule of the run that printed seed N
`
	flagDemoJSON = `  --json                 also print the summary as one JSON line
`
	flagMetrics = `  --metrics ADDR         serve Prometheus metrics at http://ADDR/metrics while it
                         runs (port 0: a free one, printed on stderr)
`
	flagHelp = `  -h, --help             this help
`
	durations = "Durations are Go durations: 300ms, 10s, 2m.\n"
)

var (
	runCommand = subcommand{
		name:  "run",
		usage: "redlock run [flags] NAME -- COMMAND [ARGS...]",
		title: "run COMMAND while holding lock NAME on a quorum of the nodes",
		about: `Take lock NAME on a quorum of the nodes, run COMMAND while holding it
(extended about every ttl/3), release it when COMMAND exits, and exit
with COMMAND's status. COMMAND runs in its own process group with
stdin/stdout/stderr inherited; it sees REDLOCK_NAME, and REDLOCK_TOKEN
with --fencing. If the lock is lost while COMMAND runs, its group gets
SIGTERM, then SIGKILL after --grace. SIGINT, SIGTERM and SIGHUP sent to
redlock are forwarded to the group; the lock is released once it exits.
With --permits K, NAME is a semaphore: up to K commands hold it at once,
each with one of its K permits, and waiters are served in order.
`,
		flags: append(connHelp(flagNodeTimeout), flagTTL, flagWait, flagFencing, flagPermits, flagHolder, flagGrace),
		exits: `  0      COMMAND exited 0
  1      lock not acquired (held elsewhere, or too many nodes failing)
  2      usage error: bad flag, value, name or command line; nothing was started
  3      lock lost while COMMAND ran; COMMAND was stopped
  4      Redis or unexpected error
  126    COMMAND could not be executed (nothing was locked)
  127    COMMAND not found (nothing was locked)
  other  COMMAND's own exit status; 128+N if it died from signal N,
         or if redlock got signal N while waiting for the lock
`,
	}
	statusCommand = subcommand{
		name:  "status",
		usage: "redlock status [flags] NAME",
		title: "show each node's view of lock NAME",
		about: `Show each node's view of lock NAME: its state, who holds it (host,
process id, the label given to run, since when), a fingerprint of the
lock's value, the remaining TTL and the fencing counter; and a verdict:
"held by a quorum" (with the holder whose value a quorum shares),
"reserved for the next in line", "free", "split" (no value on a quorum),
or "unknown" when fewer than a quorum of nodes answered. The value itself
is never shown: it would let the reader release or extend the lock.
Nodes that show the same fingerprint hold the same acquisition.
`,
		flags: append(connHelp(flagNodeTimeoutStatus), flagStatusJSON),
		exits: `  0      a quorum of nodes answered; the verdict is printed
  2      usage error: bad flag, value, name or command line
  4      fewer than a quorum of nodes answered, or an unexpected error
`,
	}
	checkCommand = subcommand{
		name:  "check",
		usage: "redlock check [flags]",
		title: "check that every node keeps the deployment rules",
		about: `Read every node's role, eviction policy and the rights of the user it
logs in as (and persistence, with --fencing), each within 1s, and report
per node. "unsafe": the node breaks a rule, and two holders can overlap
(N1: a replica; N3: an eviction policy other than noeviction; N2, with
--fencing: appendonly or appendfsync). "degraded": locks are safe, but
the user may not publish on the release channels (waiters are woken
late) or use the line of waiters (waiters are served in no order).
"error": the node could not be read (down, or CONFIG disabled).
`,
		flags: append(connHelp(flagNodeTimeoutCheck), flagCheckFencing, flagStatusJSON),
		exits: `  0      every node keeps the rules (degraded included: locks stay safe)
  2      usage error: bad flag, value or command line
  4      a node breaks a rule, or could not be checked
`,
	}
	unlockCommand = subcommand{
		name:  "unlock",
		usage: "redlock unlock --force [--yes] [flags] NAME",
		title: "break lock NAME under its holder: the operator's break-glass",
		about: `Show who holds lock NAME on each node, as status does; then, with
--yes, remove the lock on every node, whoever holds it. Where waiters
are in line it passes to the first of them, elsewhere it is deleted and
the release announced, so waiters retry at once. The fencing counter
and the line of waiters are kept: tokens must never repeat. The holder
is not told: it goes on believing it holds the lock until its deadline,
and only fencing tokens checked by the resource stop it then.
`,
		flags: append(connHelp(flagNodeTimeoutUnlock), flagForce, flagYes),
		exits: `  0      deleted: the lock was removed on at least one node
  1      nothing was held: the nodes that answered had no lock
  2      usage error, --force missing, or no --yes: nothing was deleted
  4      fewer than a quorum of nodes answered and nothing was deleted, or
         an unexpected error
`,
	}
	leaderCommand = subcommand{
		name:  "leader",
		usage: "redlock leader [flags] NAME",
		title: "show the current leader of election NAME",
		about: `Print the current leader of election NAME, as a quorum of the nodes
reports it: 'leader "VALUE" term T', or 'no leader'. Leaders are elected
with the library's Election.Campaign; the term is the leader's fencing
token and grows with every new leader. With --watch, print the current
leader, then one line per change (a new leader, or 'no leader'), until
SIGINT or SIGTERM; terms only ever grow.
`,
		flags: append(connHelp(flagLeaderNodeTimeout), flagLeaderJSON, flagWatch),
		exits: `  0      a leader is printed (--watch: interrupted)
  1      no leader: a quorum of nodes says nobody leads, or none agrees on one
  2      usage error: bad flag, value, name or command line
  4      too many nodes failing to tell, or an unexpected error
`,
	}
	demoCommand = subcommand{
		name:  "demo",
		usage: "redlock demo [flags]",
		title: "workers fighting for locks while nodes freeze, die and get cut off",
		about: `The project's job in one command. --workers workers contend for 3
locks with fencing on and write to a fenced in-memory resource while
faults are injected, never on more than N-Q nodes at once. A live line
each second, a summary table at the end; exit 0 only with no overlapping
holds and no stale write accepted. --seed replays a fault schedule.
The nodes are --addrs, else --nodes N local ones, else those of
$REDLOCK_ADDRS, else 5 local ones. Local nodes are redis-server
processes on loopback (AOF, appendfsync always): a node is frozen, killed
and restarted after the TTL, cut off, slowed down. Your nodes are only
cut off and slowed down, through a local proxy, and reached without
password or TLS. There the demo takes lock names of its own, chaos-S-0
to chaos-S-2 with S from the seed, checks that no one uses them, and
deletes their keys and fencing counters at the end: never start two demos
with the same --seed on the same nodes at once.
`,
		flags: []string{flagDemoAddrs, flagNodes, flagDuration, flagWorkers, flagSeed, flagDemoJSON, flagMetrics},
		exits: `  0      no overlapping holds, no stale write accepted
  2      usage error: bad flag, value or command line; nothing was started
  4      an overlapping hold or an accepted stale write was seen, or the demo
         could not run (no redis-server, fewer than a quorum of your nodes
         answering)
`,
	}
	commands = []subcommand{runCommand, statusCommand, checkCommand, unlockCommand, leaderCommand, demoCommand}
)

// connHelp returns the lines of the connection flags, which run and status
// share with check and unlock, ending with nodeTimeout, the command's --node-timeout line.
func connHelp(nodeTimeout string) []string {
	return []string{flagAddrs, flagUser, flagPassword, flagPasswordFile, flagTLS, flagTLSCA, flagTLSCert,
		flagTLSKey, flagTLSServerName, nodeTimeout}
}

// help is what `redlock help` prints.
func help() string {
	var b strings.Builder
	b.WriteString(helpTitle + "\nUSAGE\n")
	for _, c := range commands {
		b.WriteString("  " + c.usage + "\n")
	}
	b.WriteString(`  redlock help [COMMAND]      this help, or one command's: redlock COMMAND --help
  redlock version             the version of this build; also redlock --version

`)
	for _, c := range commands {
		b.WriteString(indent(c.about, fmt.Sprintf("%-8s", c.name), "        "))
	}
	b.WriteString("\nFLAGS (run, status, check, unlock)\n" + strings.Join(connHelp(flagNodeTimeout), "") +
		"                         status and unlock wait max(10x this, 1s) for each\n" +
		"                         node's answer; check gives each node 1s\n")
	b.WriteString("FLAGS (run)\n" + flagTTL + flagWait + flagFencing + flagPermits + flagHolder + flagGrace)
	b.WriteString("FLAGS (status)\n" + flagStatusJSON)
	b.WriteString("FLAGS (check)\n" + flagCheckFencing + flagStatusJSON)
	b.WriteString("FLAGS (unlock)\n" + flagForce + flagYes)
	b.WriteString("FLAGS (demo)\n" + strings.Join(demoCommand.flags, ""))
	b.WriteString(durations)
	b.WriteString(`
EXIT CODES
  0      ok (run: COMMAND exited 0; check: the rules are kept; unlock: deleted)
  1      run: lock not acquired (held elsewhere, or too many nodes failing);
         unlock: nothing was held
  2      usage error: bad flag, value, name or command line; nothing was started
         (unlock: without --force or --yes nothing was deleted)
  3      run: lock lost while COMMAND ran; COMMAND was stopped
  4      Redis or unexpected error; status, unlock: fewer than a quorum of nodes
         answered; check: a node breaks a rule or could not be checked;
         demo: an overlapping hold or an accepted stale write was seen
  126    run: COMMAND could not be executed (nothing was locked)
  127    run: COMMAND not found (nothing was locked)
  other  run: COMMAND's own exit status; 128+N if it died from signal N,
         or if redlock got signal N while waiting for the lock
`)
	return b.String()
}

// commandHelp is what `redlock NAME --help` prints.
func commandHelp(c subcommand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "redlock %s: %s\n\nUSAGE\n  %s\n\n", c.name, c.title, c.usage)
	b.WriteString(indent(c.about, "  ", "  "))
	b.WriteString("\nFLAGS\n" + strings.Join(c.flags, "") + flagHelp + durations)
	b.WriteString("\nEXIT CODES\n" + c.exits)
	return b.String()
}

// printCommandHelp prints the help of the command called name.
func printCommandHelp(name string) {
	for _, c := range commands {
		if c.name == name {
			fmt.Print(commandHelp(c))
			return
		}
	}
}

// indent prefixes the first line of text with first and the others with
// rest.
func indent(text, first, rest string) string {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for i, l := range lines {
		if l == "" {
			continue
		}
		if i == 0 {
			b.WriteString(first)
		} else {
			b.WriteString(rest)
		}
		b.WriteString(l)
	}
	return b.String()
}

// versionLine is what `redlock version` prints: the main module's version
// (a release tag, a pseudo-version stamped from the checkout's commit by go
// build, or "(devel)"), the commit and whether the tree had local changes,
// when the build recorded them, and the Go version.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return "redlock (version unknown)"
	}
	line := "redlock " + bi.Main.Version
	if bi.Main.Version == "" {
		line = "redlock (devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		line += ", commit " + rev[:min(12, len(rev))]
		if modified == "true" {
			line += ", modified"
		}
	}
	if bi.GoVersion != "" {
		line += " (" + bi.GoVersion + ")"
	}
	return line
}

// buildInfo returns the binary's build information, or nil.
func buildInfo() *debug.BuildInfo {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi
	}
	return nil
}
