package main

import (
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// run --tls against nodes that do not speak TLS: the one-line error says
// what happened to each node, a TLS handshake that did not complete, and
// not "no answer within 50ms", which was the node timeout of a lock request
// queued behind the connection's set-up. (How long it takes is the pool's
// dial timeout; pool's and tls_test.go's tests see to it.)
func TestRunTLSHandshakeMessage(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	r := runBin(t, nil, "run", "--tls", "--addrs", addrs(c), "tls-msg", "--", "true")
	if r.code != exitNotAcquired {
		t.Fatalf("exit %d, stderr %q; want %d", r.code, r.stderr, exitNotAcquired)
	}
	oneLineOf(t, "stderr", r.stderr)
	if strings.Count(r.stderr, "TLS handshake") < 2 || strings.Contains(r.stderr, "no answer within 50ms") {
		t.Errorf("stderr %q; want the TLS handshake named for the failing nodes, not the node timeout", r.stderr)
	}
	if k := keyCount(t, c, "tls-msg"); k != 0 {
		t.Errorf("lock key on %d nodes; want none", k)
	}
}
