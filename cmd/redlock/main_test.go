package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// binPath is the redlock binary the tests drive, as a user would.
var binPath string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "redlock-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "redlock")
	// CGO_ENABLED=0: the binary ships as a single static file.
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}

// syncBuffer is a bytes.Buffer that a test may read while the process
// writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is how a run of the binary ended.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// command prepares the binary with args, in an environment cleared of the
// developer's REDLOCK_* variables plus env. It is killed if the test ends
// first.
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binPath, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDLOCK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // a stray grandchild must not hold the pipes for ever
	return cmd, &stdout, &stderr
}

// runBin runs the binary to completion. It is safe to call from several
// goroutines.
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd, stdout, stderr := command(t, env, args...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Errorf("start %v: %v", args, err)
		return result{code: -1}
	}
	return finish(cmd, stdout, stderr, start)
}

// proc is a running binary, started by startBin.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed once it exited and res is set
	res            result
}

// startBin starts the binary with args, as command does. The test waits for
// its end before its clean-up runs.
func startBin(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd, stdout, stderr := command(t, env, args...)
	p := &proc{cmd: cmd, stdout: stdout, stderr: stderr, done: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		p.res = finish(cmd, stdout, stderr, start)
		close(p.done)
	}()
	t.Cleanup(func() { <-p.done }) // t.Context's end kills it first
	return p
}

// wait waits for the process to exit and returns how it ended.
func (p *proc) wait() result {
	<-p.done
	return p.res
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process (redlock itself, not its command).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitStdout waits until the process has written want on stdout, and fails
// at once, with how it ended, if it exits without writing it.
func (p *proc) waitStdout(t *testing.T, want string) {
	t.Helper()
	waitFor(t, waitCap, fmt.Sprintf("%q on stdout", want), func() bool {
		if strings.Contains(p.stdout.String(), want) {
			return true
		}
		if p.exited() {
			t.Fatalf("exit %d without %q on stdout: stdout %q, stderr %q", p.res.code, want, p.res.stdout, p.res.stderr)
		}
		return false
	})
}

// waitCap bounds the polls of waitFor that wait for a process or a node to
// get somewhere: generous, so that a loaded machine does not fail a test.
// It is never a timing target.
const waitCap = 30 * time.Second

// testNodeTimeout is the --node-timeout of the runs whose subject is not
// the timeout: the default 50ms is a budget that a loaded machine (-race,
// parallel tests, a noisy neighbour) can miss on one round trip, which
// would fail the lock and the test for no reason of the test's.
const testNodeTimeout = "1s"

// finish waits for cmd and collects its result.
func finish(cmd *exec.Cmd, stdout, stderr *syncBuffer, start time.Time) result {
	cmd.Wait()
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
}

// oneLineOf fails the test unless s is exactly one non-empty line.
func oneLineOf(t *testing.T, what, s string) {
	t.Helper()
	if s == "" || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s = %q; want exactly one line", what, s)
	}
}

// addrs returns the --addrs value of the cluster.
func addrs(c *redistest.Cluster) string { return strings.Join(c.Addrs(), ",") }

// holdLock takes name for the test's own set-up, retrying while the nodes
// are slow to answer (fresh connections on a loaded machine): the set-up
// is not what the test is about.
func holdLock(t *testing.T, cl *redlock.Client, name string, opts ...redlock.Option) *redlock.Lock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cl.Lock(ctx, name, append([]redlock.Option{redlock.WithTries(1 << 20)}, opts...)...)
	if err != nil {
		t.Fatalf("taking %q for the test: %v", name, err)
	}
	return l
}

// newClient returns a library client on the cluster's nodes, for holding
// and probing locks from the test. Its node timeout is testNodeTimeout's
// unless opts say otherwise.
func newClient(t *testing.T, c *redistest.Cluster, opts ...redlock.Option) *redlock.Client {
	t.Helper()
	nodeTimeout, err := time.ParseDuration(testNodeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]redlock.Option{redlock.WithNodeTimeout(nodeTimeout)}, opts...)
	var pools []pool.Pool
	for _, a := range c.Addrs() {
		pools = append(pools, pool.New(a))
	}
	t.Cleanup(func() { closePools(pools) })
	cl, err := redlock.New(pools, opts...)
	if err != nil {
		t.Fatalf("redlock.New: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// keyCount counts the running nodes on which the lock key of name exists.
func keyCount(t *testing.T, c *redistest.Cluster, name string) int {
	t.Helper()
	k := 0
	for _, n := range c.Nodes() {
		if !n.Running() || n.Paused() {
			continue
		}
		v, err := n.Do("EXISTS", redlock.LockKey(name))
		if err != nil {
			t.Fatalf("EXISTS on %s: %v", n.Addr(), err)
		}
		k += int(v.(int64))
	}
	return k
}

// freeSoon fails the test unless the library can take lock name within
// 5s, far less than the 10s TTL: the binary released it. The release returns
// at the quorum (A6), the last nodes answer a moment later, hence the
// retries; the margin is for a loaded machine running -race.
func freeSoon(t *testing.T, cl *redlock.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := cl.Lock(ctx, name, redlock.WithRetryDelay(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatalf("lock %q not free after redlock exited: %v", name, err)
	}
	l.Unlock(context.Background())
}

// runAtOnce starts n runs of the binary at once, the i-th with command line
// args(i), waits for them all, and fails the test unless each exited 0: the
// runs of a test that contend for one lock or semaphore and log what their
// commands did (logFields reads it).
func runAtOnce(t *testing.T, n int, args func(i int) []string) {
	t.Helper()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i] = runBin(t, nil, args(i)...)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d, stderr %q", i, r.code, r.stderr)
		}
	}
}

// logFields reads the log that the commands of runAtOnce appended to, one
// event a line, and returns each line's fields and the log itself (for the
// test's messages). It fails the test on a line without n fields.
func logFields(t *testing.T, path string, n int) (lines [][]string, log []byte) {
	t.Helper()
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		f := strings.Fields(line)
		if len(f) != n {
			t.Fatalf("bad log line %q in\n%s", line, log)
		}
		lines = append(lines, f)
	}
	return lines, log
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
