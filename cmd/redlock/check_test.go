package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// checkJSON runs `redlock check --json` with extra flags and decodes it.
func checkJSON(t *testing.T, c *redistest.Cluster, wantCode int, flags ...string) checkReport {
	t.Helper()
	r := runBin(t, nil, append([]string{"check", "--json", "--addrs", addrs(c)}, flags...)...)
	if r.code != wantCode {
		t.Fatalf("check --json %v: exit %d, stdout %s, stderr %q; want %d", flags, r.code, r.stdout, r.stderr, wantCode)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json output %q: %v", r.stdout, err)
	}
	if len(rep.Nodes) != len(c.Nodes()) {
		t.Fatalf("check --json: %d nodes; want %d", len(rep.Nodes), len(c.Nodes()))
	}
	return rep
}

// check runs the library's Check on real nodes (N1-N3): masters with
// noeviction keep the rules (exit 0); with --fencing, only AOF nodes do;
// an eviction policy and a replica break them (exit 4), each named on its
// node; a node down cannot be vouched for (exit 4).
func TestCheck(t *testing.T) {
	t.Parallel()
	good := redistest.New(t, 3, redistest.WithAOF())
	r := runBin(t, nil, "check", "--fencing", "--addrs", addrs(good))
	if r.code != exitOK || r.stderr != "" || !strings.Contains(r.stdout, "the deployment keeps the rules (persistence checked for fencing)") {
		t.Errorf("check --fencing on AOF masters: exit %d, stdout %s, stderr %q; want 0, kept", r.code, r.stdout, r.stderr)
	}

	c := redistest.New(t, 3)
	if rep := checkJSON(t, c, exitOK); rep.Verdict != findingOK || rep.Fencing {
		t.Errorf("check on masters without AOF: verdict %q; want ok: persistence is checked only with --fencing", rep.Verdict)
	}
	rep := checkJSON(t, c, exitError, "--fencing")
	if rep.Verdict != findingUnsafe || !strings.Contains(rep.Nodes[0].Findings[0].Message, `appendonly is "no"`) {
		t.Errorf("check --fencing without AOF: %+v; want unsafe, appendonly named", rep)
	}

	c.Nodes()[0].Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	c.Nodes()[1].Do("REPLICAOF", "127.0.0.1", "1")
	rep = checkJSON(t, c, exitError)
	if rep.Verdict != findingUnsafe {
		t.Errorf("verdict %q; want unsafe", rep.Verdict)
	}
	for i, want := range []string{`maxmemory-policy is "allkeys-lru"`, `N1: role is "slave"`} {
		n := rep.Nodes[i]
		if n.Addr != c.Nodes()[i].Addr() || n.Status != findingUnsafe || len(n.Findings) != 1 || !strings.Contains(n.Findings[0].Message, want) {
			t.Errorf("node %d: %+v; want unsafe: %s", i, n, want)
		}
	}
	if n := rep.Nodes[2]; n.Status != findingOK || len(n.Findings) != 0 {
		t.Errorf("the good node: %+v; want ok", n)
	}
	r = runBin(t, nil, "check", "--addrs", addrs(c))
	if r.code != exitError || !strings.Contains(r.stdout, "breaks the rules") || !regexp.MustCompile(regexp.QuoteMeta(c.Nodes()[0].Addr())+` +unsafe +maxmemory-policy`).MatchString(r.stdout) {
		t.Errorf("check: exit %d, stdout:\n%s", r.code, r.stdout)
	}

	c.Nodes()[0].Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	c.Nodes()[1].Do("REPLICAOF", "NO", "ONE")
	c.Nodes()[2].Kill()
	rep = checkJSON(t, c, exitError)
	if rep.Verdict != checkUnchecked || rep.Nodes[2].Status != findingError || rep.Nodes[0].Status != findingOK {
		t.Errorf("a node down: %+v; want unchecked, that node an error", rep)
	}
}

// A user without channel rights keeps the lock safe (R5): check says
// degraded, and exits 0.
func TestCheckDegraded(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	for _, n := range c.Nodes() {
		if _, err := n.Do("ACL", "SETUSER", "default", "resetchannels"); err != nil {
			t.Fatal(err)
		}
	}
	rep := checkJSON(t, c, exitOK)
	if rep.Verdict != findingDegraded || rep.Nodes[0].Status != findingDegraded || !strings.Contains(rep.Nodes[0].Findings[0].Message, "publish") {
		t.Errorf("no channel rights: %+v; want degraded, saying publish", rep)
	}
	r := runBin(t, nil, "check", "--addrs", addrs(c))
	if r.code != exitOK || !strings.Contains(r.stdout, "keeps the rules, degraded") {
		t.Errorf("check: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}
