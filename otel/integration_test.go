package redlockotel_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// TestIntegrationClient runs a real client on three real redis-server
// nodes with the observer, and reads back the metrics and spans of a
// TryLock, a refused TryLock, an Extend, an Unlock and a Lock.
func TestIntegrationClient(t *testing.T) {
	h := newHarness(t)
	_, client := clusterClient(t, h)

	ctx, caller := h.parent(t)
	l, err := client.TryLock(ctx, "otel-integration")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if v, _ := sumValue(t, h.metrics(t), "redlock.locks.held"); v != 1 {
		t.Errorf("redlock.locks.held = %d while holding, want 1", v)
	}
	if _, err := client.TryLock(ctx, "otel-integration"); err == nil {
		t.Fatal("second TryLock granted")
	}
	if err := l.Extend(ctx, 5*time.Second); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	l2, err := client.Lock(ctx, "otel-integration")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := l2.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}

	got := h.metrics(t)
	tryOK := histPoint(t, got, "redlock.acquire.duration", outcome("ok"), call("try_lock"))
	tryRefused := histPoint(t, got, "redlock.acquire.duration", outcome("refused"), call("try_lock"))
	lockAttempt := histPoint(t, got, "redlock.acquire.duration", outcome("ok"), call("lock"))
	wait := histPoint(t, got, "redlock.wait.duration", outcome("ok"))
	ext := histPoint(t, got, "redlock.extend.duration", outcome("ok"), auto(false))
	rel := histPoint(t, got, "redlock.release.duration", outcome("ok"))
	for name, c := range map[string]uint64{"try_lock ok": tryOK.Count, "try_lock refused": tryRefused.Count,
		"lock attempt ok": lockAttempt.Count, "wait ok": wait.Count, "extend ok": ext.Count} {
		if c != 1 {
			t.Errorf("%s: count %d, want 1", name, c)
		}
	}
	if rel.Count != 2 {
		t.Errorf("release ok: count %d, want 2", rel.Count)
	}
	if v, _ := sumValue(t, got, "redlock.locks.held"); v != 0 {
		t.Errorf("redlock.locks.held = %d after both releases, want 0", v)
	}
	if f, ok := got["redlock.node.failures"]; ok && len(f.Data.(metricdata.Sum[int64]).DataPoints) > 0 {
		t.Errorf("node failures on healthy nodes: %+v", f.Data)
	}

	for name, want := range map[string]int{"redlock.TryLock": 2, "redlock.Extend": 1, "redlock.Unlock": 2, "redlock.Lock": 1, "redlock.Lock.attempt": 1} {
		spans := h.spanNamed(name)
		if len(spans) != want {
			t.Errorf("%d spans %s, want %d (all: %v)", len(spans), name, want, slicesOf(h.spans.Ended()))
		}
		for _, s := range spans {
			if s.Parent().SpanID() != caller.SpanContext().SpanID() {
				t.Errorf("%s not under the caller's span", name)
			}
			a := attrs(s.Attributes())
			if a["redlock.lock.name"].AsString() != "otel-integration" || a["redlock.nodes"].AsInt64() != 3 || a["redlock.quorum"].AsInt64() != 2 {
				t.Errorf("%s attributes %v, want the lock's name, 3 nodes, quorum 2", name, s.Attributes())
			}
		}
	}
}

// TestIntegrationNodesDown: with two of three nodes killed, a TryLock
// fails; its span is an Error with one event per dead node, and the
// node failures are counted per node as connection failures.
func TestIntegrationNodesDown(t *testing.T) {
	h := newHarness(t)
	cluster, client := clusterClient(t, h)
	dead := cluster.Nodes()[1:]
	for _, n := range dead {
		if err := n.Kill(); err != nil {
			t.Fatalf("kill %s: %v", n.Addr(), err)
		}
	}
	ctx, _ := h.parent(t)
	if _, err := client.TryLock(ctx, "otel-nodes-down"); err == nil {
		t.Fatal("TryLock granted with two of three nodes dead")
	}
	s := h.only(t, "redlock.TryLock")
	if s.Status().Code != codes.Error || attrs(s.Attributes())["redlock.outcome"].AsString() != "failed" {
		t.Errorf("status %v, outcome %v; want Error, failed", s.Status(), attrs(s.Attributes())["redlock.outcome"])
	}
	got := map[string]string{}
	for _, ev := range s.Events() {
		a := attrs(ev.Attributes)
		got[a["redlock.node"].AsString()] = a["error.type"].AsString()
	}
	got2 := h.metrics(t)
	for _, n := range dead {
		if got[n.Addr()] != "connection" {
			t.Errorf("span event of %s: kind %q, want connection (events %v)", n.Addr(), got[n.Addr()], got)
		}
		if v, ok := sumValue(t, got2, "redlock.node.failures", node(n.Addr()), errType("connection")); !ok || v < 1 {
			t.Errorf("redlock.node.failures {%s, connection} = %d (present %v), want at least 1", n.Addr(), v, ok)
		}
	}
	histPoint(t, got2, "redlock.acquire.duration", outcome("failed"), call("try_lock"))
}

// clusterClient starts three nodes and a client on them that reports to
// h's observer; both are closed when the test ends.
func clusterClient(t *testing.T, h *harness) (*redistest.Cluster, *redlock.Client) {
	t.Helper()
	cluster := redistest.New(t, 3)
	var pools []pool.Pool
	for _, addr := range cluster.Addrs() {
		p := pool.New(addr)
		t.Cleanup(func() { p.Close() })
		pools = append(pools, p)
	}
	client, err := redlock.New(pools, redlock.WithTTL(5*time.Second), redlock.WithObserver(h.obs))
	if err != nil {
		t.Fatalf("redlock.New: %v", err)
	}
	t.Cleanup(func() { client.Close() }) // before the pools: cleanups run last-in first-out
	return cluster, client
}
