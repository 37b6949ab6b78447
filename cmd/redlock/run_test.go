package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// Two runs started at once on one name never run their commands at the
// same time, and both run (the second waits): mutual exclusion seen from
// the commands' own clocks.
func TestRunMutualExclusion(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "start $1 $(date +%s%N)" >> "$2"; sleep 0.3; echo "end $1 $(date +%s%N)" >> "$2"`
	runAtOnce(t, 2, func(i int) []string {
		return []string{"run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "--wait", "10s", "mutex", "--", "sh", "-c", script, "sh", strconv.Itoa(i), log}
	})
	lines, b := logFields(t, log, 3)
	span := map[string][2]int64{}
	for _, f := range lines {
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad timestamp in %q: %v (date +%%s%%N unsupported?)", strings.Join(f, " "), err)
		}
		s := span[f[1]]
		s[map[string]int{"start": 0, "end": 1}[f[0]]] = ns
		span[f[1]] = s
	}
	a, b2 := span["0"], span["1"]
	if len(span) != 2 || a[0] == 0 || a[1] == 0 || b2[0] == 0 || b2[1] == 0 {
		t.Fatalf("want a start and an end for each run, got\n%s", b)
	}
	if a[1] > b2[0] && b2[1] > a[0] {
		t.Fatalf("the commands overlapped: run 0 %v, run 1 %v\n%s", a, b2, b)
	}
}

// H2: when a majority of nodes freezes, the lock cannot be extended; the
// command is stopped (it would act without the lock) and redlock exits 3.
// Exit 3 itself says that the loss was seen while the command ran: had
// redlock waited for sleep 30 to end, it would exit 0.
func TestRunLockLostStopsCommand(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	p := startBin(t, nil, "run", "--addrs", addrs(c), "--ttl", "3s", "--node-timeout", "500ms", "lost", "--",
		"sh", "-c", `echo "started $$"; exec sleep 30`)
	p.waitStdout(t, "\n")
	var pid int
	if _, err := fmt.Sscanf(p.stdout.String(), "started %d\n", &pid); err != nil || pid <= 0 {
		t.Fatalf("stdout %q: want \"started PID\"", p.stdout.String())
	}
	for _, n := range c.Nodes()[:3] {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
		defer n.Resume()
	}
	paused := time.Now()
	r := p.wait()
	if r.code != exitLost {
		t.Fatalf("exit %d after the freeze, stderr %q; want %d", r.code, r.stderr, exitLost)
	}
	oneLineOf(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, `redlock: lock "lost" lost: `) || !strings.Contains(r.stderr, "; stopping the command") {
		t.Errorf("stderr %q; want the lost-lock line", r.stderr)
	}
	// redlock reaped the command before it exited: its pid is gone.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("sleep (pid %d) after exit: kill(0) = %v; want ESRCH", pid, err)
	}
	t.Logf("stopped %v after the freeze: %s", time.Since(paused), r.stderr)
}

// --wait 0, the default, makes one attempt: a held lock gives exit 1 at
// once, saying it is held elsewhere, and the command never runs. --wait 1s
// waits that long.
func TestRunNotAcquired(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	l := holdLock(t, newClient(t, c), "held")
	defer l.Unlock(context.Background())
	marker := filepath.Join(t.TempDir(), "ran")

	r := runBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "--wait", "0", "held", "--", "touch", marker)
	if r.code != exitNotAcquired || r.elapsed > 2*time.Second {
		t.Fatalf("--wait 0: exit %d after %v, stderr %q; want %d promptly", r.code, r.elapsed, r.stderr, exitNotAcquired)
	}
	oneLineOf(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, "held by another holder") {
		t.Errorf("stderr %q; want the library's reason", r.stderr)
	}

	// Without --wait, the default is the same single attempt: run is for
	// a job that must run on one machine (help.go, flagWait).
	r = runBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "held", "--", "touch", marker)
	if r.code != exitNotAcquired || !strings.Contains(r.stderr, "held by another holder") {
		t.Fatalf("no --wait: exit %d, stderr %q; want %d, held elsewhere", r.code, r.stderr, exitNotAcquired)
	}

	r = runBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "--wait", "1s", "held", "--", "touch", marker)
	if r.code != exitNotAcquired || r.elapsed < time.Second || r.elapsed > 4*time.Second {
		t.Fatalf("--wait 1s: exit %d after %v, stderr %q; want %d after about 1s", r.code, r.elapsed, r.stderr, exitNotAcquired)
	}
	oneLineOf(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, "within --wait 1s") {
		t.Errorf("stderr %q; want it to name --wait", r.stderr)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the command ran without the lock: %v", err)
	}
}

// The command's exit status is redlock's, 128+N for signal N, and the lock
// is released afterwards.
func TestRunExitStatusPassesThrough(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	cl := newClient(t, c)
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -9 $$", 128 + 9},
	} {
		r := runBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "status-"+strconv.Itoa(tc.want), "--", "sh", "-c", tc.script)
		if r.code != tc.want || r.stderr != "" {
			t.Errorf("sh -c %q: exit %d, stderr %q; want %d and nothing", tc.script, r.code, r.stderr, tc.want)
		}
		freeSoon(t, cl, "status-"+strconv.Itoa(tc.want))
	}
}

// SIGTERM sent to redlock reaches every process of the command's group;
// redlock waits for the command, exits with its status and releases the
// lock.
//
// The command is a shell (the group's leader) with a child. The child says
// "ready" itself, once it runs with SIGTERM's default action: a "ready"
// echoed by the leader after `sleep 30 &` (as this test once did) comes as
// soon as the child is forked, and a child forked but not yet exec'd still
// has the leader's trap, which catches the SIGTERM and forgets it at exec;
// the sleep then survived and held the test's stdout for WaitDelay (the
// flake of issue 9: "exit 5 5.007s after SIGTERM"). The leader's trap waits
// for the child and reports how it ended (143 = killed by SIGTERM), so the
// test checks that both got the signal, not how fast.
func TestRunForwardsSIGTERM(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	script := `trap 'wait $child; echo "got-term child=$?"; exit 5' TERM
sh -c 'echo ready; exec sleep 30' &
child=$!
wait`
	p := startBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "term", "--", "sh", "-c", script)
	p.waitStdout(t, "ready")
	p.signal(t, syscall.SIGTERM)
	r := p.wait()
	// (The leader's own stderr may say "Terminated" about its child.)
	if r.code != 5 || !strings.Contains(r.stdout, "got-term child=143") || strings.Contains(r.stderr, "redlock") {
		t.Fatalf("exit %d after SIGTERM, stdout %q, stderr %q; want 5, got-term child=143 (the leader and its child both got SIGTERM), and no word from redlock", r.code, r.stdout, r.stderr)
	}
	freeSoon(t, newClient(t, c), "term")
}

// A signal that reaches redlock while it takes the lock and starts the
// command is not lost: it ends the wait for the lock (the command is not
// started), or it is forwarded to the command as soon as the command
// exists. Either way redlock exits 128+15 and the lock is free; the command
// (sleep 30) would otherwise keep it for 30s.
func TestRunSignalWhileStarting(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	p := startBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "starting", "--", "sleep", "30")
	// The lock key is written before the command starts, and after redlock
	// began to catch signals: the signal lands in between or just after.
	waitFor(t, waitCap, "lock key written", func() bool {
		if p.exited() {
			t.Fatalf("exit %d before the lock was taken: stderr %q", p.res.code, p.res.stderr)
		}
		return keyCount(t, c, "starting") > 0
	})
	p.signal(t, syscall.SIGTERM)
	if r := p.wait(); r.code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit %d after SIGTERM, stderr %q; want %d", r.code, r.stderr, 128+int(syscall.SIGTERM))
	}
	freeSoon(t, newClient(t, c), "starting")
}

// F4: with --fencing the command gets a token that grows across runs;
// REDLOCK_NAME is set, and a REDLOCK_TOKEN inherited from the parent never
// reaches a command run without --fencing.
func TestRunFencingToken(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	show := []string{"--", "sh", "-c", `echo "$REDLOCK_NAME $REDLOCK_TOKEN"`}
	var tokens []uint64
	for range 2 {
		r := runBin(t, nil, append([]string{"run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "--fencing", "fenced"}, show...)...)
		f := strings.Fields(r.stdout)
		if r.code != 0 || len(f) != 2 || f[0] != "fenced" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and \"fenced TOKEN\"", r.code, r.stdout, r.stderr)
		}
		tok, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || tok == 0 {
			t.Fatalf("REDLOCK_TOKEN %q: want > 0", f[1])
		}
		tokens = append(tokens, tok)
	}
	if tokens[1] <= tokens[0] {
		t.Fatalf("tokens %v: want strictly increasing", tokens)
	}
	r := runBin(t, []string{"REDLOCK_TOKEN=999"}, append([]string{"run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "plain"}, show...)...)
	if r.code != 0 || r.stdout != "plain \n" {
		t.Fatalf("without --fencing: exit %d, stdout %q; want \"plain \" (no token)", r.code, r.stdout)
	}
}

// REDLOCK_ADDRS and REDLOCK_PASSWORD are the defaults of --addrs and
// --password.
func TestRunEnvDefaults(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3, redistest.WithPassword("s3cret"))
	r := runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c), "REDLOCK_PASSWORD=s3cret"}, "run", "--node-timeout", testNodeTimeout, "env", "--", "true")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	r = runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c)}, "run", "--node-timeout", testNodeTimeout, "env", "--", "true")
	if r.code != exitNotAcquired || !strings.Contains(r.stderr, "too many nodes failing") {
		t.Fatalf("without the password: exit %d, stderr %q; want %d, nodes failing", r.code, r.stderr, exitNotAcquired)
	}
	for _, cmd := range [][]string{{"run", "--node-timeout", testNodeTimeout, "env", "--", "true"}, {"status", "env"}} {
		r = runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c), "REDLOCK_PASSWORD=wrong-s3cret"}, cmd...)
		if r.code == 0 || strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("%s with a wrong password: exit %d, stdout %q, stderr %q; want a failure that does not show the password", cmd[0], r.code, r.stdout, r.stderr)
		}
	}
}
