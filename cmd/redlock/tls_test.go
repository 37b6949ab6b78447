package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// How long a command may take against nodes that do not speak TLS. The
// pool's dial timeout (1s) bounds each TLS handshake: status dials once per
// node (about 1 s), run up to three times one after the other (connect,
// lock, release: about 3 s). Without that bound, redigo's 10 s handshake
// timeout made status take 10 s and run 20 s (issue 9); the bounds are
// generous for a noisy machine and still half of those.
const (
	statusTLSBound = 5 * time.Second
	runTLSBound    = 10 * time.Second
)

// C3: --tls against plain nodes: they never answer the ClientHello, and the
// command must fail within the dial timeout, saying it was the handshake.
func TestTLSAgainstPlainNodes(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)

	t.Run("status", func(t *testing.T) {
		t.Parallel()
		r := runBin(t, nil, "status", "--json", "--tls", "--addrs", addrs(c), "tls-st")
		t.Logf("status --tls: exit %d after %v, stderr %q", r.code, r.elapsed.Round(time.Millisecond), r.stderr)
		if r.code != exitError {
			t.Errorf("status --tls against plain nodes: exit %d; want %d (fewer than a quorum answered)", r.code, exitError)
		}
		if r.elapsed > statusTLSBound {
			t.Errorf("status --tls against plain nodes took %v; want < %v", r.elapsed, statusTLSBound)
		}
		var rep statusReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("status --json output %q: %v", r.stdout, err)
		}
		for _, n := range rep.Nodes {
			if n.Reachable || n.Error == nil || !strings.Contains(*n.Error, "TLS handshake") {
				t.Errorf("%s: reachable %v, error %v; want unreachable with a TLS handshake error", n.Addr, n.Reachable, n.Error)
			}
		}
	})

	t.Run("run", func(t *testing.T) {
		t.Parallel()
		r := runBin(t, nil, "run", "--tls", "--addrs", addrs(c), "tls-run", "--", "true")
		t.Logf("run --tls: exit %d after %v, stderr %q", r.code, r.elapsed.Round(time.Millisecond), r.stderr)
		if r.code == 0 {
			t.Errorf("run --tls against plain nodes: exit 0; want a failure")
		}
		if r.elapsed > runTLSBound {
			t.Errorf("run --tls against plain nodes took %v; want < %v", r.elapsed, runTLSBound)
		}
	})
}
