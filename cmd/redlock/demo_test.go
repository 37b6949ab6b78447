package main

import (
	"os/exec"
	"strings"
	"testing"
)

// `redlock demo --duration 5s` starts its own nodes, injects faults, and
// exits 0 with a summary that shows no overlaps and no stale write accepted.
func TestDemoShortRun(t *testing.T) {
	out, err := exec.Command(binPath, "demo", "--duration", "5s", "--workers", "6").CombinedOutput()
	if err != nil {
		t.Fatalf("redlock demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"verdict", "OK: no overlaps, no stale write accepted", "overlapping holds", "faults injected", "[  1s]"} {
		if !strings.Contains(s, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, s)
		}
	}
}

func TestDemoBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--duration", "0s"},
		{"demo", "--duration", "soon"},
		{"demo", "--workers", "0"},
		{"demo", "--nodes", "0"},
		{"demo", "--bogus"},
		{"demo", "extra"},
		{"demo", "--addrs", "127.0.0.1:1,,127.0.0.1:2"},
	} {
		cmd := exec.Command(binPath, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 2 || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Fatalf("redlock %v: exit %d, stderr %q; want exit 2 with one line", args, code, stderr.String())
		}
	}
}
