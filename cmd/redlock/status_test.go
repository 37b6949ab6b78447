package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// statusJSON runs `redlock status --json NAME` and decodes its output.
func statusJSON(t *testing.T, c *redistest.Cluster, name string, wantCode int) statusReport {
	t.Helper()
	r := runBin(t, nil, "status", "--json", "--addrs", addrs(c), name)
	if r.code != wantCode {
		t.Fatalf("status --json: exit %d, stderr %q; want %d", r.code, r.stderr, wantCode)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json output %q: %v", r.stdout, err)
	}
	if rep.Name != name || rep.Quorum != len(c.Nodes())/2+1 || len(rep.Nodes) != len(c.Nodes()) {
		t.Fatalf("status --json: %+v; want name %q, quorum and %d nodes", rep, name, len(c.Nodes()))
	}
	return rep
}

// statusTable runs `redlock status NAME` and returns its output.
func statusTable(t *testing.T, c *redistest.Cluster, name string, wantCode int) string {
	t.Helper()
	r := runBin(t, nil, "status", "--addrs", addrs(c), name)
	if r.code != wantCode || r.stderr != "" {
		t.Fatalf("status: exit %d, stderr %q; want %d", r.code, r.stderr, wantCode)
	}
	return r.stdout
}

// status reads every node through the library (M2) and judges by the
// configured quorum (A5): free, held with its holder, a node down, no
// quorum.
func TestStatus(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	cl := newClient(t, c)

	if out := statusTable(t, c, "st", 0); !strings.Contains(out, `lock "st": free (5 of 5 nodes answered, quorum 3)`) {
		t.Errorf("status of a free lock:\n%s", out)
	}
	if rep := statusJSON(t, c, "st", 0); rep.Verdict != string(redlock.VerdictFree) || rep.Holder != nil {
		t.Errorf("verdict %q, holder %v; want free, none", rep.Verdict, rep.Holder)
	}

	l := holdLock(t, cl, "st", redlock.WithTTL(10*time.Second), redlock.WithFencing(), redlock.WithHolder("nightly"))
	waitFor(t, 3*time.Second, "key on every node", func() bool { return keyCount(t, c, "st") == 5 })
	rep := statusJSON(t, c, "st", 0)
	if rep.Verdict != string(redlock.VerdictHeld) || rep.Holder == nil || rep.Holder.Label != "nightly" || rep.Holder.PID != os.Getpid() || rep.Fingerprint == nil {
		t.Errorf("while held: verdict %q, holder %+v, fingerprint %v; want %q by this process, labelled", rep.Verdict, rep.Holder, rep.Fingerprint, redlock.VerdictHeld)
	}
	for _, n := range rep.Nodes {
		switch {
		case !n.Reachable || n.Error != nil:
			t.Errorf("%s: unreachable (%v) while all nodes run", n.Addr, n.Error)
		case n.State == nil || *n.State != "held" || n.Holder == nil || n.Holder.Label != "nightly":
			t.Errorf("%s: state %v, holder %+v; want held by nightly", n.Addr, n.State, n.Holder)
		case n.Fingerprint == nil || rep.Fingerprint == nil || *n.Fingerprint != *rep.Fingerprint:
			t.Errorf("%s: fingerprint %v; want the quorum's", n.Addr, n.Fingerprint)
		case n.TTLms == nil || *n.TTLms <= 8000 || *n.TTLms > 10000:
			t.Errorf("%s: ttl_ms %v; want in (8000, 10000] for a 10s lock", n.Addr, n.TTLms)
		case n.Counter == nil || *n.Counter < 1:
			t.Errorf("%s: counter %v; want >= 1 after a fenced lock", n.Addr, n.Counter)
		}
	}
	host, _ := os.Hostname()
	out := statusTable(t, c, "st", 0)
	for _, want := range []string{"held by a quorum", fmt.Sprintf(`holder: "nightly" (%s, pid %d), since `, host, os.Getpid()), *rep.Fingerprint} {
		if !strings.Contains(out, want) {
			t.Errorf("status while held lacks %q:\n%s", want, out)
		}
	}
	if err := l.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "key gone", func() bool { return keyCount(t, c, "st") == 0 })

	// One node down: it shows unreachable and the verdict still stands.
	dead := c.Nodes()[4]
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	rep = statusJSON(t, c, "st", 0)
	if d := rep.Nodes[4]; d.Reachable || d.Error == nil || *d.Error == "" || d.Addr != dead.Addr() {
		t.Errorf("killed node: %+v; want unreachable with the error", d)
	}
	if rep.Verdict != string(redlock.VerdictFree) {
		t.Errorf("verdict %q with one node down; want free", rep.Verdict)
	}
	if out := statusTable(t, c, "st", 0); !strings.Contains(out, "4 of 5 nodes answered") || !strings.Contains(out, "connection refused") {
		t.Errorf("status with one node down:\n%s", out)
	}

	// A5: three down of five leaves no quorum to judge by: unknown, exit 4.
	for _, n := range c.Nodes()[2:4] {
		n.Kill()
	}
	if rep := statusJSON(t, c, "st", exitError); rep.Verdict != string(redlock.VerdictUnknown) {
		t.Errorf("verdict %q with 3 of 5 down; want unknown", rep.Verdict)
	}
}

// M2: neither the table nor the JSON of status shows the lock's value or
// its secret, read here from the nodes directly; a reservation does not
// show the waiter's id either.
func TestStatusShowsHolderNotSecret(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c)
	l := holdLock(t, cl, "hidden", redlock.WithHolder("job"))
	waitFor(t, 3*time.Second, "key on every node", func() bool { return keyCount(t, c, "hidden") == 3 })
	var secrets []string
	for _, n := range c.Nodes() {
		v, err := redis.String(n.Do("GET", redlock.LockKey("hidden")))
		if err != nil {
			t.Fatal(err)
		}
		secret, _, _ := strings.Cut(v, " ")
		secrets = append(secrets, v, secret)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"unlock", "--force"}} {
		r := runBin(t, nil, append(args, "--addrs", addrs(c), "hidden")...)
		if !strings.Contains(r.stdout, "job") {
			t.Errorf("%v: stdout lacks the holder:\n%s", args, r.stdout)
		}
		for _, s := range secrets {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("%v shows the secret %q:\n%s%s", args, s, r.stdout, r.stderr)
			}
		}
	}

	// A dead waiter in line (an entry as line_head.lua writes it: ticket
	// and expiry in node time): the release reserves the lock for it, and
	// its id, which would take the lock, is not shown.
	const waiter = "wDEADWAITER"
	for _, n := range c.Nodes() {
		now, err := redis.Int64s(n.Do("TIME"))
		if err != nil {
			t.Fatal(err)
		}
		expiry := now[0]*1000 + 60000
		if _, err := n.Do("HSET", redlock.LineKey("hidden"), waiter, fmt.Sprintf("1:%d", expiry)); err != nil {
			t.Fatal(err)
		}
	}
	l.Unlock(context.Background())
	r := runBin(t, nil, "status", "--addrs", addrs(c), "hidden")
	if !strings.Contains(r.stdout, string(redlock.VerdictReserved)) || strings.Contains(r.stdout, waiter) {
		t.Errorf("status of a reservation: want %q, without the waiter's id:\n%s", redlock.VerdictReserved, r.stdout)
	}
}

// A frozen node costs status its per-node deadline, never a hang.
func TestStatusFrozenNode(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	n := c.Nodes()[0]
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	defer n.Resume()
	start := time.Now()
	rep := statusJSON(t, c, "frozen", 0)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("status took %v with a frozen node; want about 1s", took)
	}
	if rep.Nodes[0].Reachable || rep.Verdict != string(redlock.VerdictFree) {
		t.Errorf("frozen node %+v, verdict %q; want unreachable, free", rep.Nodes[0], rep.Verdict)
	}
}
