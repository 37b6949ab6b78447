package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

func TestStatus(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	cl := newClient(t, c)

	if out := statusTable(t, c, "st", 0); !strings.Contains(out, `lock "st": free (5 of 5 nodes answered, quorum 3)`) {
		t.Errorf("status of a free lock:\n%s", out)
	}
	if rep := statusJSON(t, c, "st", 0); rep.Verdict != verdictFree {
		t.Errorf("verdict %q; want free", rep.Verdict)
	}

	l := holdLock(t, cl, "st", redlock.WithTTL(10*time.Second), redlock.WithFencing())
	waitFor(t, 3*time.Second, "key on every node", func() bool { return keyCount(t, c, "st") == 5 })
	rep := statusJSON(t, c, "st", 0)
	if rep.Verdict != verdictHeld {
		t.Errorf("verdict %q while held; want %q", rep.Verdict, verdictHeld)
	}
	for _, n := range rep.Nodes {
		switch {
		case !n.Reachable || n.Error != nil:
			t.Errorf("%s: unreachable (%v) while all nodes run", n.Addr, n.Error)
		case n.Holder == nil || !strings.HasSuffix(*n.Holder, "…") || len([]rune(*n.Holder)) != 9:
			t.Errorf("%s: holder %v; want 8 characters and …", n.Addr, n.Holder)
		case n.TTLms == nil || *n.TTLms <= 8000 || *n.TTLms > 10000:
			t.Errorf("%s: ttl_ms %v; want in (8000, 10000] for a 10s lock", n.Addr, n.TTLms)
		case n.Counter == nil || *n.Counter < 1:
			t.Errorf("%s: counter %v; want >= 1 after a fenced lock", n.Addr, n.Counter)
		}
	}
	if out := statusTable(t, c, "st", 0); !strings.Contains(out, "held by a quorum") || !strings.Contains(out, "…") {
		t.Errorf("status while held:\n%s", out)
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
	if rep.Verdict != verdictFree {
		t.Errorf("verdict %q with one node down; want free", rep.Verdict)
	}
	if out := statusTable(t, c, "st", 0); !strings.Contains(out, "4 of 5 nodes answered") || !strings.Contains(out, "connection refused") {
		t.Errorf("status with one node down:\n%s", out)
	}

	// A5: three down of five leaves no quorum to judge by: unknown, exit 4.
	for _, n := range c.Nodes()[2:4] {
		n.Kill()
	}
	if rep := statusJSON(t, c, "st", exitError); rep.Verdict != verdictUnknown {
		t.Errorf("verdict %q with 3 of 5 down; want unknown", rep.Verdict)
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
	if rep.Nodes[0].Reachable || rep.Verdict != verdictFree {
		t.Errorf("frozen node %+v, verdict %q; want unreachable, free", rep.Nodes[0], rep.Verdict)
	}
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	up := func(v string) nodeStatus { return nodeStatus{Reachable: true, value: v} }
	down := nodeStatus{}
	for _, tc := range []struct {
		name  string
		nodes []nodeStatus
		want  string
	}{
		{"all free", []nodeStatus{up(""), up(""), up("")}, verdictFree},
		{"quorum free", []nodeStatus{up(""), up(""), down}, verdictFree},
		{"held", []nodeStatus{up("a"), up("a"), up("")}, verdictHeld},
		{"held, one down", []nodeStatus{up("a"), up("a"), down}, verdictHeld},
		{"split values", []nodeStatus{up("a"), up("b"), up("")}, verdictSplit},
		{"minority key", []nodeStatus{up("a"), up(""), up("")}, verdictSplit},
		{"no quorum answered", []nodeStatus{up(""), down, down}, verdictUnknown},
	} {
		if got := verdict(tc.nodes, len(tc.nodes)/2+1); got != tc.want {
			t.Errorf("%s: verdict %q; want %q", tc.name, got, tc.want)
		}
	}
}
