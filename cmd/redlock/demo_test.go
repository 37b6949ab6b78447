package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/chaos"
	"github.com/quorumlock/quorumlock/internal/redistest"
)

// `redlock demo --duration 5s` starts its own nodes, injects faults, shows
// the line of waiters in its live status, and exits 0 with a summary that
// shows no overlaps and no stale write accepted.
func TestDemoShortRun(t *testing.T) {
	r := runBin(t, nil, "demo", "--duration", "5s", "--workers", "6")
	if r.code != 0 {
		t.Fatalf("redlock demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"verdict", "OK: no overlaps, no stale write accepted", "overlapping holds", "faults injected", "[  1s]", "line: ", " waiting, ", " handovers/s"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "starting 5 redis-server processes") {
		t.Errorf("stderr %q; want it to say it starts 5 local nodes", r.stderr)
	}
}

// With $REDLOCK_ADDRS set, demo runs against those nodes (as run and status
// do), says so, warns that 4 nodes tolerate no more failures than 3, and
// leaves nothing behind on them: the fencing counters of its lock names,
// which nothing else deletes, are gone at the end, and so are the locks.
func TestDemoYourNodes(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 4)
	r := runBin(t, []string{"REDLOCK_ADDRS=" + addrs(c)}, "demo", "--duration", "3s", "--workers", "4", "--json")
	if r.code != 0 {
		t.Fatalf("demo on $REDLOCK_ADDRS: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var s chaos.Summary
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("summary %q: %v", line, err)
			}
		}
	}
	if s.Nodes != 4 || s.Acquisitions == 0 {
		t.Fatalf("summary %+v; want 4 nodes (those of $REDLOCK_ADDRS) and acquisitions (fenced: counters were written)\n%s\n%s", s, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "starting") {
		t.Errorf("stderr %q: it started local nodes", r.stderr)
	}
	for _, want := range []string{
		"redlock: warning: 4 nodes tolerate 1 failure, as 3 do; use an odd number\n",
		"redlock demo: your 4 nodes, from REDLOCK_ADDRS: only cut off and slowed down",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q; want %q", r.stderr, want)
		}
	}
	for _, n := range c.Nodes() {
		keys, err := n.Do("KEYS", "*")
		if err != nil {
			t.Fatalf("KEYS on %s: %v", n.Addr(), err)
		}
		if k := keys.([]any); len(k) != 0 {
			t.Errorf("%s: %d keys left after the demo, e.g. %s", n.Addr(), len(k), k[0])
		}
	}
}

// A demo on nodes of which fewer than a quorum answer does not start: it
// could only report "no overlaps" after no acquisition at all.
func TestDemoYourNodesUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	r := runBin(t, nil, "demo", "--addrs", refused, "--duration", "3s")
	const want = "redlock: demo: 0 of your 1 node answered, fewer than a quorum (1): node " // then the address and the error
	if r.code != exitError || !strings.Contains(r.stderr, want+refused+": ") {
		t.Fatalf("demo on a refusing node: exit %d, stdout %q, stderr %q; want %d and %q", r.code, r.stdout, r.stderr, exitError, want)
	}
}

// Every bad demo command line exits 2 with one line that names the bad
// value (and the flag as the help spells it, or $REDLOCK_ADDRS).
func TestDemoBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"demo", "--duration", "0s"}, "--duration 0s: must be > 0"},
		{nil, []string{"demo", "--duration", "soon"}, `--duration "soon": want a duration`},
		{nil, []string{"demo", "--workers", "0"}, "--workers 0: must be >= 1"},
		{nil, []string{"demo", "--workers", "many"}, `--workers "many": want a whole number`},
		{nil, []string{"demo", "--nodes", "0"}, "--nodes 0: must be between 1 and 15"},
		{nil, []string{"demo", "--seed", "-1"}, `--seed "-1": want a whole number >= 0`},
		{nil, []string{"demo", "--bogus"}, "unknown flag --bogus"},
		{nil, []string{"demo", "extra"}, `unexpected argument "extra"`},
		{nil, []string{"demo", "--addrs", "127.0.0.1:1,,127.0.0.1:2"}, "empty address at position 2 in --addrs"},
		{[]string{"REDLOCK_ADDRS=127.0.0.1:1,,127.0.0.1:2"}, []string{"demo"}, "empty address at position 2 in REDLOCK_ADDRS"},
		{[]string{"REDLOCK_ADDRS=127.0.0.1:1"}, []string{"demo", "--addrs", "localhost"}, `bad address "localhost" in --addrs`},
		{nil, []string{"demo", "--addrs", "127.0.0.1:1", "--nodes", "3"}, "--addrs and --nodes"},
		// The demo's proxies speak plain TCP with no AUTH: a node it cannot
		// reach as given is refused by name, its password hidden.
		{nil, []string{"demo", "--addrs", "rediss://127.0.0.1:1"}, `address "rediss://127.0.0.1:1" in --addrs: the demo reaches nodes in plain TCP`},
		{[]string{"REDLOCK_ADDRS=redis://ops:s3cret@127.0.0.1:1"}, []string{"demo"}, `address "redis://ops:xxxxx@127.0.0.1:1" in REDLOCK_ADDRS`},
		// --nodes asks for local nodes: $REDLOCK_ADDRS is not read.
		{[]string{"REDLOCK_ADDRS=127.0.0.1:1,,x"}, []string{"demo", "--nodes", "16"}, "--nodes 16: must be between 1 and 15"},
	} {
		r := runBin(t, tc.env, tc.args...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want %d", tc.env, tc.args, r.code, r.stdout, r.stderr, exitUsage)
			continue
		}
		oneLineOf(t, "stderr", r.stderr)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v %v: stderr %q; want %q", tc.env, tc.args, r.stderr, tc.want)
		}
		checkFlagSpelling(t, r.stderr)
		if strings.Contains(r.stderr, "s3cret") {
			t.Errorf("%v %v: stderr %q shows the password", tc.env, tc.args, r.stderr)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redlock:{chaos-1-": "redlock:{chaos-1-",
		`a*b?c[d]e\f`:       `a\*b\?c\[d\]e\\f`,
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q; want %q", in, got, want)
		}
	}
}
