package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// campaignFor makes cl lead election name with value, for the test's own
// set-up.
func campaignFor(t *testing.T, cl *redlock.Client, name, value string) *redlock.Lock {
	t.Helper()
	e, err := cl.Election(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l, err := e.Campaign(ctx, value)
	if err != nil {
		t.Fatalf("campaigning in %q for the test: %v", name, err)
	}
	return l
}

// V4: `redlock leader NAME` prints the leader a quorum reports and exits 0,
// or prints "no leader" and exits 1; --json says the same as one object;
// a bad name or a missing one is a usage error.
func TestLeaderCommand(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c)
	r := runBin(t, nil, "leader", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "el")
	if r.code != exitNotAcquired || strings.TrimSpace(r.stdout) != "no leader" {
		t.Fatalf("leader with nobody leading: exit %d, stdout %q, stderr %q; want 1 and no leader", r.code, r.stdout, r.stderr)
	}
	l := campaignFor(t, cl, "el", "api-1:8080")
	want := fmt.Sprintf("leader %q term %d", "api-1:8080", l.Token())
	r = runBin(t, nil, "leader", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "el")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != want || r.stderr != "" {
		t.Fatalf("leader: exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, want)
	}
	r = runBin(t, nil, "leader", "--json", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "el")
	var got leaderLine
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitOK {
		t.Fatalf("leader --json: exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if got != (leaderLine{Election: "el", Leader: true, Value: "api-1:8080", Term: l.Token()}) {
		t.Fatalf("leader --json: %+v", got)
	}
	l.Unlock(t.Context())
	for _, args := range [][]string{{"leader", "--addrs", addrs(c)}, {"leader", "--addrs", addrs(c), ""}, {"leader", "--addrs", addrs(c), "a", "b"}} {
		if r := runBin(t, nil, args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, r.code, r.stderr)
		}
	}
}

// V6: `redlock leader --watch --json NAME` prints the current state, then
// one line per change in term order, until interrupted; then it exits 0.
func TestLeaderWatch(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c)
	p := startBin(t, nil, "leader", "--watch", "--json", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "watched")
	p.waitStdout(t, `"leader":false`)
	var terms []uint64
	for _, v := range []string{"first", "second"} {
		l := campaignFor(t, cl, "watched", v)
		terms = append(terms, l.Token())
		p.waitStdout(t, fmt.Sprintf(`"value":%q,"term":%d`, v, l.Token()))
		l.Unlock(t.Context())
	}
	p.signal(t, syscall.SIGINT)
	r := p.wait()
	if r.code != exitOK {
		t.Fatalf("leader --watch after SIGINT: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	var last uint64
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l leaderLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if l.Leader {
			if l.Term <= last {
				t.Fatalf("term %d after term %d:\n%s", l.Term, last, r.stdout)
			}
			last = l.Term
		}
	}
	if last != terms[1] {
		t.Fatalf("last term printed %d, want %d:\n%s", last, terms[1], r.stdout)
	}
}
