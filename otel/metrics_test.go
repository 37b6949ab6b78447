package redlockotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	redlockotel "github.com/quorumlock/quorumlock/otel"
	"github.com/quorumlock/quorumlock/redlock"
)

var (
	outcome = attribute.Key("redlock.outcome").String
	call    = attribute.Key("redlock.call").String
	auto    = attribute.Key("redlock.extend.auto").Bool
	cause   = attribute.Key("redlock.lost.cause").String
	node    = attribute.Key("redlock.node").String
	errType = attribute.Key("error.type").String
	name    = attribute.Key("redlock.lock.name").String
)

// TestMetricsEveryKind feeds one event of every kind and reads each
// instrument's data points back.
func TestMetricsEveryKind(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ms := time.Millisecond
	for _, e := range []redlock.Event{
		{Kind: redlock.EventAttempt, Ctx: ctx, Name: "a", Outcome: redlock.OutcomeOK, Latency: 2 * ms, HeldDelta: 1},
		{Kind: redlock.EventAttempt, Ctx: ctx, Name: "b", Outcome: redlock.OutcomeRefused, InLock: true, Latency: 1 * ms},
		{Kind: redlock.EventAttempt, Ctx: ctx, Name: "b", Outcome: redlock.OutcomeOK, InLock: true, Latency: 3 * ms, HeldDelta: 1},
		{Kind: redlock.EventLock, Ctx: ctx, Name: "b", Outcome: redlock.OutcomeOK, Attempts: 2, Latency: 50 * ms},
		{Kind: redlock.EventLock, Ctx: ctx, Name: "c", Outcome: redlock.OutcomeCanceled, Attempts: 1, Latency: 7 * ms},
	} {
		h.obs.Observe(e)
	}
	got := h.metrics(t)
	if v, _ := sumValue(t, got, "redlock.locks.held"); v != 2 {
		t.Errorf("redlock.locks.held = %d after two grants, want 2", v)
	}
	for _, e := range []redlock.Event{
		{Kind: redlock.EventExtend, Ctx: ctx, Name: "a", Outcome: redlock.OutcomeOK, Auto: true, Latency: 4 * ms},
		{Kind: redlock.EventExtend, Ctx: ctx, Name: "b", Outcome: redlock.OutcomeRefused, Latency: 5 * ms},
		{Kind: redlock.EventRelease, Ctx: ctx, Name: "a", Outcome: redlock.OutcomeOK, Latency: 6 * ms, HeldDelta: -1},
		{Kind: redlock.EventLost, Ctx: ctx, Name: "b", Cause: redlock.LostExtendFailed, HeldDelta: -1},
		{Kind: redlock.EventNodeFailure, Ctx: ctx, Node: "10.0.0.1:6379", Failure: redlock.FailureTimeout},
		{Kind: redlock.EventNodeFailure, Ctx: ctx, Node: "10.0.0.1:6379", Failure: redlock.FailureTimeout},
		{Kind: redlock.EventNodeFailure, Ctx: ctx, Node: "10.0.0.2:6379", Failure: redlock.FailureReply},
		{Kind: redlock.EventReconnect, Ctx: ctx, Node: "10.0.0.1:6379"},
	} {
		h.obs.Observe(e)
	}
	got = h.metrics(t)

	for _, c := range []struct {
		metric string
		kvs    []attribute.KeyValue
		count  uint64
		sum    float64
	}{
		{"redlock.acquire.duration", kv(outcome("ok"), call("try_lock")), 1, 0.002},
		{"redlock.acquire.duration", kv(outcome("refused"), call("lock")), 1, 0.001},
		{"redlock.acquire.duration", kv(outcome("ok"), call("lock")), 1, 0.003},
		{"redlock.wait.duration", kv(outcome("ok")), 1, 0.05},
		{"redlock.wait.duration", kv(outcome("canceled")), 1, 0.007},
		{"redlock.extend.duration", kv(outcome("ok"), auto(true)), 1, 0.004},
		{"redlock.extend.duration", kv(outcome("refused"), auto(false)), 1, 0.005},
		{"redlock.release.duration", kv(outcome("ok")), 1, 0.006},
	} {
		dp := histPoint(t, got, c.metric, c.kvs...)
		if dp.Count != c.count || !near(dp.Sum, c.sum) {
			t.Errorf("%s {%s}: count %d sum %g, want %d and %g", c.metric, enc(c.kvs), dp.Count, dp.Sum, c.count, c.sum)
		}
	}
	for _, m := range []string{"redlock.acquire.duration", "redlock.wait.duration", "redlock.extend.duration", "redlock.release.duration"} {
		if got[m].Unit != "s" {
			t.Errorf("%s unit %q, want s", m, got[m].Unit)
		}
		hist := got[m].Data.(metricdata.Histogram[float64])
		if b := hist.DataPoints[0].Bounds; len(b) == 0 || b[0] != 0.0005 || b[len(b)-1] != 60 {
			t.Errorf("%s bounds %v, want 0.0005 s to 60 s", m, b)
		}
	}
	for _, c := range []struct {
		metric string
		kvs    []attribute.KeyValue
		want   int64
	}{
		{"redlock.locks.held", nil, 0},
		{"redlock.locks.lost", kv(cause("extend_failed")), 1},
		{"redlock.node.failures", kv(node("10.0.0.1:6379"), errType("timeout")), 2},
		{"redlock.node.failures", kv(node("10.0.0.2:6379"), errType("error_reply")), 1},
		{"redlock.node.reconnects", kv(node("10.0.0.1:6379")), 1},
		// The outcome counters: one per event, on the histograms' sets.
		{"redlock.acquire.attempts", kv(outcome("ok"), call("try_lock")), 1},
		{"redlock.acquire.attempts", kv(outcome("refused"), call("lock")), 1},
		{"redlock.acquire.attempts", kv(outcome("ok"), call("lock")), 1},
		{"redlock.lock.calls", kv(outcome("ok")), 1},
		{"redlock.lock.calls", kv(outcome("canceled")), 1},
		{"redlock.extend.calls", kv(outcome("ok"), auto(true)), 1},
		{"redlock.extend.calls", kv(outcome("refused"), auto(false)), 1},
		{"redlock.release.calls", kv(outcome("ok")), 1},
	} {
		v, ok := sumValue(t, got, c.metric, c.kvs...)
		if !ok || v != c.want {
			t.Errorf("%s {%s} = %d (present %v), want %d", c.metric, enc(c.kvs), v, ok, c.want)
		}
	}
	if s := got["redlock.locks.held"].Data.(metricdata.Sum[int64]); s.IsMonotonic {
		t.Error("redlock.locks.held is monotonic, want an up-down counter")
	}
	// No lock name on any data point by default.
	for n, m := range got {
		if strings.Contains(fmt.Sprint(m.Data), "redlock.lock.name") {
			t.Errorf("%s carries the lock name without WithLockNameAttribute", n)
		}
	}
}

// TestLockNameAttribute: with the option, every data point of a lock's
// event carries its name; node points do not (they have none).
func TestLockNameAttribute(t *testing.T) {
	h := newHarness(t, redlockotel.WithLockNameAttribute())
	ctx := context.Background()
	h.obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeOK, Latency: time.Millisecond, HeldDelta: 1})
	h.obs.Observe(redlock.Event{Kind: redlock.EventLost, Ctx: ctx, Name: "jobs", Cause: redlock.LostExpired, HeldDelta: -1})
	h.obs.Observe(redlock.Event{Kind: redlock.EventNodeFailure, Ctx: ctx, Node: "n:1", Failure: redlock.FailureConnection})
	got := h.metrics(t)
	histPoint(t, got, "redlock.acquire.duration", outcome("ok"), call("try_lock"), name("jobs"))
	if v, ok := sumValue(t, got, "redlock.locks.lost", cause("expired"), name("jobs")); !ok || v != 1 {
		t.Errorf("redlock.locks.lost {expired, jobs} = %d (present %v), want 1", v, ok)
	}
	if v, ok := sumValue(t, got, "redlock.locks.held", name("jobs")); !ok || v != 0 {
		t.Errorf("redlock.locks.held {jobs} = %d (present %v), want 0", v, ok)
	}
	if v, ok := sumValue(t, got, "redlock.node.failures", node("n:1"), errType("connection")); !ok || v != 1 {
		t.Errorf("redlock.node.failures {n:1, connection} = %d (present %v), want 1", v, ok)
	}
}

// TestWithAttributes: the attributes given are on every data point and
// every span.
func TestWithAttributes(t *testing.T) {
	deploy := attribute.String("deployment", "eu")
	h := newHarness(t, redlockotel.WithAttributes(deploy))
	ctx := context.Background()
	h.obs.Observe(redlock.Event{Kind: redlock.EventRelease, Ctx: ctx, Name: "x", Outcome: redlock.OutcomeOK, Latency: time.Millisecond})
	h.obs.Observe(redlock.Event{Kind: redlock.EventReconnect, Ctx: ctx, Node: "n:1"})
	got := h.metrics(t)
	histPoint(t, got, "redlock.release.duration", outcome("ok"), deploy)
	if v, ok := sumValue(t, got, "redlock.node.reconnects", node("n:1"), deploy); !ok || v != 1 {
		t.Errorf("redlock.node.reconnects {n:1, eu} = %d (present %v), want 1", v, ok)
	}
	spans := h.spanNamed("redlock.Unlock")
	if len(spans) != 1 || attrs(spans[0].Attributes())["deployment"].AsString() != "eu" {
		t.Errorf("redlock.Unlock spans %d, want 1 with deployment=eu", len(spans))
	}
}

// TestInvalidOptions: each bad option is an error wrapping
// redlock.ErrInvalidOption that names it; nothing panics.
func TestInvalidOptions(t *testing.T) {
	for _, c := range []struct {
		opt  redlockotel.Option
		want string
	}{
		{redlockotel.WithMeterProvider(nil), "WithMeterProvider(nil)"},
		{redlockotel.WithTracerProvider(nil), "WithTracerProvider(nil)"},
		{redlockotel.WithAttributes(attribute.String("", "v")), "empty key (value v)"},
		{redlockotel.WithAttributes(attribute.String("redlock.outcome", "v")), `key "redlock.outcome"`},
		{redlockotel.WithAttributes(attribute.String("error.type", "v")), `key "error.type"`},
	} {
		obs, err := redlockotel.New(c.opt)
		if obs != nil || !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(bad option) = %v, %v; want ErrInvalidOption naming %s", obs, err, c.want)
		}
	}
	if _, err := redlockotel.New(); err != nil {
		t.Errorf("New() with the global providers: %v", err)
	}
}

// TestUnknownValues: values past the known ones (a newer core) are
// recorded as "unknown", and an unknown kind records nothing but its held
// change.
func TestUnknownValues(t *testing.T) {
	h := newHarness(t)
	h.obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Outcome: redlock.Outcome(99), Latency: time.Millisecond})
	h.obs.Observe(redlock.Event{Kind: redlock.EventLost, Cause: redlock.LostCause(99)})
	h.obs.Observe(redlock.Event{Kind: redlock.EventNodeFailure, Node: "n:1", Failure: redlock.FailureKind(99)})
	h.obs.Observe(redlock.Event{Kind: redlock.EventKind(99), HeldDelta: 1})
	h.obs.Observe(redlock.Event{}) // the zero event
	got := h.metrics(t)
	histPoint(t, got, "redlock.acquire.duration", outcome("unknown"), call("try_lock"))
	if v, ok := sumValue(t, got, "redlock.locks.lost", cause("unknown")); !ok || v != 1 {
		t.Errorf("redlock.locks.lost {unknown} = %d (present %v), want 1", v, ok)
	}
	if v, ok := sumValue(t, got, "redlock.node.failures", node("n:1"), errType("unknown")); !ok || v != 1 {
		t.Errorf("redlock.node.failures {n:1, unknown} = %d (present %v), want 1", v, ok)
	}
	if v, _ := sumValue(t, got, "redlock.locks.held"); v != 1 {
		t.Errorf("redlock.locks.held = %d, want 1", v)
	}
	names := slicesOf(h.spans.Ended())
	if !slices.Equal(names, []string{"redlock.TryLock"}) {
		t.Errorf("spans %v, want only the attempt's redlock.TryLock", names)
	}
}

func kv(kvs ...attribute.KeyValue) []attribute.KeyValue { return kvs }

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// enc prints an attribute set for a message.
func enc(kvs []attribute.KeyValue) string {
	set := attribute.NewSet(kvs...)
	return set.Encoded(attribute.DefaultEncoder())
}
