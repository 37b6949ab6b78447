package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumlock/quorumlock/internal/promtext"
	"github.com/quorumlock/quorumlock/redlock"
)

// demoMetrics turns the demo clients' events (redlock.Observer) into
// Prometheus metrics, served by `redlock demo --metrics ADDR`. It is
// written on internal/promtext, not on the Prometheus client library: the
// command lives in the core module, which takes no heavy dependency.
type demoMetrics struct {
	reg                                      promtext.Registry
	attempts, locks, extends, releases, lost *promtext.Counter
	nodeFailures, reconnects                 *promtext.Counter
	acquire, wait                            *promtext.Histogram
	held                                     *promtext.Gauge
}

// Bucket bounds, in seconds: an attempt is a round trip to the nodes (well
// under a millisecond on loopback, up to the node timeout); a Lock call
// may wait for holders.
var (
	acquireBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	waitBuckets    = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

func newDemoMetrics() *demoMetrics {
	m := &demoMetrics{}
	r := &m.reg
	m.attempts = r.Counter("redlock_acquire_attempts_total", "Acquisition attempts (TryLock, and each of Lock's), by outcome.", "outcome")
	m.acquire = r.Histogram("redlock_acquire_seconds", "Time of one acquisition attempt on the nodes.", acquireBuckets)
	m.locks = r.Counter("redlock_lock_calls_total", "Lock calls ended, by outcome.", "outcome")
	m.wait = r.Histogram("redlock_wait_seconds", "Time of a whole Lock call: the wait for the lock.", waitBuckets)
	m.extends = r.Counter("redlock_extend_total", "Extensions, by outcome and whether auto-extension made them.", "outcome", "auto")
	m.releases = r.Counter("redlock_release_total", "Unlock calls, by outcome.", "outcome")
	m.lost = r.Counter("redlock_lost_total", "Held locks lost before their release, by cause.", "cause")
	m.nodeFailures = r.Counter("redlock_node_failures_total", "Failed requests to a node, by node and kind.", "node", "kind")
	m.reconnects = r.Counter("redlock_reconnects_total", "Connections to a node replaced after they died.", "node")
	m.held = r.Gauge("redlock_locks_held", "Locks held now.")
	return m
}

// Observe implements redlock.Observer.
func (m *demoMetrics) Observe(e redlock.Event) {
	if e.HeldDelta != 0 {
		m.held.Add(float64(e.HeldDelta))
	}
	switch e.Kind {
	case redlock.EventAttempt:
		m.attempts.Inc(e.Outcome.String())
		m.acquire.Observe(e.Latency.Seconds())
	case redlock.EventLock:
		m.locks.Inc(e.Outcome.String())
		m.wait.Observe(e.Latency.Seconds())
	case redlock.EventExtend:
		m.extends.Inc(e.Outcome.String(), strconv.FormatBool(e.Auto))
	case redlock.EventRelease:
		m.releases.Inc(e.Outcome.String())
	case redlock.EventLost:
		m.lost.Inc(e.Cause.String())
	case redlock.EventNodeFailure:
		m.nodeFailures.Inc(e.Node, e.Failure.String())
	case redlock.EventReconnect:
		m.reconnects.Inc(e.Node)
	}
}

// serveMetrics listens on addr and serves h at /metrics in the background.
// It returns the address it bound (port 0 picks a free one) and the
// function that stops the server.
func serveMetrics(addr string, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errorf("warning: demo: --metrics: %v", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}
	return ln.Addr().String(), stop, nil
}
