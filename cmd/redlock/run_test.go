package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i] = runBin(t, nil, "run", "--addrs", addrs(c), "--wait", "10s", "mutex", "--", "sh", "-c", script, "sh", strconv.Itoa(i), log)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", i, r.code, r.stderr)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	span := map[string][2]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad log line %q in\n%s", line, b)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad timestamp in %q: %v (date +%%s%%N unsupported?)", line, err)
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
func TestRunLockLostStopsCommand(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd, _, stderr := command(t, nil, "run", "--addrs", addrs(c), "--ttl", "1s", "lost", "--",
		"sh", "-c", `echo $$ > "$0"; exec sleep 30`, pidFile)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitFor(t, 10*time.Second, "command started", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	frozen := c.Nodes()[:3]
	for _, n := range frozen {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
	}
	paused := time.Now()
	r := finish(cmd, &syncBuffer{}, stderr, start)
	took := time.Since(paused)
	for _, n := range frozen {
		n.Resume()
	}
	if r.code != exitLost || took > 5*time.Second {
		t.Fatalf("exit %d %v after the freeze, stderr %q; want %d within 5s", r.code, took, r.stderr, exitLost)
	}
	oneLineOf(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, `redlock: lock "lost" lost: `) || !strings.Contains(r.stderr, "; stopping the command") {
		t.Errorf("stderr %q; want the lost-lock line", r.stderr)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("sleep (pid %d) after exit: kill(0) = %v; want ESRCH", pid, err)
	}
	t.Logf("stopped %v after the freeze: %s", took, r.stderr)
}

// --wait 0 makes one attempt: a held lock gives exit 1 at once, saying it
// is held elsewhere, and the command never runs. --wait 1s waits that long.
func TestRunNotAcquired(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	l, err := newClient(t, c).TryLock(context.Background(), "held")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	marker := filepath.Join(t.TempDir(), "ran")

	r := runBin(t, nil, "run", "--addrs", addrs(c), "--wait", "0", "held", "--", "touch", marker)
	if r.code != exitNotAcquired || r.elapsed > 2*time.Second {
		t.Fatalf("--wait 0: exit %d after %v, stderr %q; want %d promptly", r.code, r.elapsed, r.stderr, exitNotAcquired)
	}
	oneLineOf(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, "held by another holder") {
		t.Errorf("stderr %q; want the library's reason", r.stderr)
	}

	r = runBin(t, nil, "run", "--addrs", addrs(c), "--wait", "1s", "held", "--", "touch", marker)
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
		r := runBin(t, nil, "run", "--addrs", addrs(c), "status-"+strconv.Itoa(tc.want), "--", "sh", "-c", tc.script)
		if r.code != tc.want || r.stderr != "" {
			t.Errorf("sh -c %q: exit %d, stderr %q; want %d and nothing", tc.script, r.code, r.stderr, tc.want)
		}
		freeSoon(t, cl, "status-"+strconv.Itoa(tc.want))
	}
}

// SIGTERM sent to redlock reaches the command's process group; redlock
// waits for it, exits with its status and releases the lock.
func TestRunForwardsSIGTERM(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	// "ready" comes once sleep runs, so the signal finds the whole group.
	cmd, stdout, stderr := command(t, nil, "run", "--addrs", addrs(c), "term", "--",
		"sh", "-c", `trap "echo got-term; exit 5" TERM; sleep 30 & echo ready; wait`)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "trap installed", func() bool { return strings.Contains(stdout.String(), "ready") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	r := finish(cmd, stdout, stderr, start)
	if took := time.Since(signalled); r.code != 5 || !strings.Contains(r.stdout, "got-term") || took > 5*time.Second {
		t.Fatalf("exit %d %v after SIGTERM, stdout %q, stderr %q; want 5 and got-term at once", r.code, took, r.stdout, r.stderr)
	}
	freeSoon(t, newClient(t, c), "term")
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
		r := runBin(t, nil, append([]string{"run", "--addrs", addrs(c), "--fencing", "fenced"}, show...)...)
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
	r := runBin(t, []string{"REDLOCK_TOKEN=999"}, append([]string{"run", "--addrs", addrs(c), "plain"}, show...)...)
	if r.code != 0 || r.stdout != "plain \n" {
		t.Fatalf("without --fencing: exit %d, stdout %q; want \"plain \" (no token)", r.code, r.stdout)
	}
}

// REDLOCK_ADDRS and REDLOCK_PASSWORD are the defaults of --addrs and
// --password.
func TestRunEnvDefaults(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3, redistest.WithPassword("s3cret"))
	r := runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c), "REDLOCK_PASSWORD=s3cret"}, "run", "env", "--", "true")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	r = runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c)}, "run", "env", "--", "true")
	if r.code != exitNotAcquired || !strings.Contains(r.stderr, "too many nodes failing") {
		t.Fatalf("without the password: exit %d, stderr %q; want %d, nodes failing", r.code, r.stderr, exitNotAcquired)
	}
}
