package main

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// S1, S6: runs started at once with --permits 2 all run, never more than
// two of their commands at the same time (seen from the commands' own
// clocks); a bad --permits is a usage error naming it, and nothing runs.
func TestRunPermits(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	for _, bad := range []string{"0", "-1", "1025", "x"} {
		r := runBin(t, nil, "run", "--addrs", addrs(c), "--permits", bad, "sem", "--", "true")
		if r.code != exitUsage || !strings.Contains(r.stderr, bad) {
			t.Fatalf("--permits %s: exit %d, stderr %q; want exit %d naming the value", bad, r.code, r.stderr, exitUsage)
		}
	}
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "$(date +%s%N) 1" >> "$1"; sleep 0.3; echo "$(date +%s%N) -1" >> "$1"`
	const runs = 5
	runAtOnce(t, runs, func(int) []string {
		return []string{"run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "--wait", "30s", "--permits", "2", "sem", "--", "sh", "-c", script, "sh", log}
	})
	lines, b := logFields(t, log, 2)
	type event struct{ at, delta int64 }
	var events []event
	for _, f := range lines {
		at, err1 := strconv.ParseInt(f[0], 10, 64)
		delta, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad log line %q (date +%%s%%N unsupported?)", strings.Join(f, " "))
		}
		events = append(events, event{at, delta})
	}
	if len(events) != 2*runs {
		t.Fatalf("%d log lines, want %d:\n%s", len(events), 2*runs, b)
	}
	// Ends before starts at the same instant: touching runs do not overlap.
	sort.Slice(events, func(i, j int) bool {
		return events[i].at < events[j].at || (events[i].at == events[j].at && events[i].delta < events[j].delta)
	})
	running := 0
	for _, e := range events {
		if running += int(e.delta); running > 2 {
			t.Fatalf("%d commands ran at once with --permits 2:\n%s", running, b)
		}
	}
}
