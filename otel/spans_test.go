package redlockotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-multierror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	redlockotel "github.com/quorumlock/quorumlock/otel"
	"github.com/quorumlock/quorumlock/redlock"
)

func slicesOf(spans []sdktrace.ReadOnlySpan) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	return names
}

// parent starts the caller's span and returns its context.
func (h *harness) parent(t testing.TB) (context.Context, trace.Span) {
	t.Helper()
	ctx, span := h.tp.Tracer("caller").Start(context.Background(), "caller")
	t.Cleanup(func() { span.End() })
	return ctx, span
}

// only returns the one span called name.
func (h *harness) only(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := h.spanNamed(name)
	if len(spans) != 1 {
		t.Fatalf("%d spans %s (of %v), want 1", len(spans), name, slicesOf(h.spans.Ended()))
	}
	return spans[0]
}

// checkTiming: the span ends when it was observed and lasts the event's
// latency; it sits under parent.
func checkTiming(t testing.TB, s sdktrace.ReadOnlySpan, before time.Time, latency time.Duration, parent trace.SpanContext) {
	t.Helper()
	if d := s.EndTime().Sub(s.StartTime()); d != latency {
		t.Errorf("%s lasts %v, want the latency %v", s.Name(), d, latency)
	}
	if s.EndTime().Before(before) || s.EndTime().After(time.Now()) {
		t.Errorf("%s ends at %v, want during Observe (after %v)", s.Name(), s.EndTime(), before)
	}
	if s.Parent().SpanID() != parent.SpanID() || s.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("%s parent %v in trace %v, want %v in %v", s.Name(), s.Parent().SpanID(), s.SpanContext().TraceID(), parent.SpanID(), parent.TraceID())
	}
}

// TestSpanTryLock: a TryLock is a span under the caller's, started its
// latency before the end, with the round's figures and the token.
func TestSpanTryLock(t *testing.T) {
	h := newHarness(t)
	ctx, caller := h.parent(t)
	before := time.Now()
	h.obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeOK,
		Granted: 4, Refused: 0, Failed: 1, Nodes: 5, Quorum: 3, Attempts: 1, Latency: 3 * time.Millisecond, Token: 42, HeldDelta: 1})
	s := h.only(t, "redlock.TryLock")
	checkTiming(t, s, before, 3*time.Millisecond, caller.SpanContext())
	a := attrs(s.Attributes())
	for k, want := range map[attribute.Key]any{
		"redlock.lock.name": "jobs", "redlock.outcome": "ok", "redlock.nodes.granted": int64(4),
		"redlock.nodes.refused": int64(0), "redlock.nodes.failed": int64(1), "redlock.nodes": int64(5),
		"redlock.quorum": int64(3), "redlock.fencing.token": int64(42),
	} {
		if got := a[k].AsInterface(); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if s.Status().Code != codes.Unset || len(s.Events()) != 0 {
		t.Errorf("status %v, events %d; want Unset and none", s.Status(), len(s.Events()))
	}
}

// TestSpanTryLockRefused: a refused attempt is not an error: another
// holder has the lock, which is what TryLock asks.
func TestSpanTryLockRefused(t *testing.T) {
	h := newHarness(t)
	ctx, _ := h.parent(t)
	qe := &redlock.QuorumError{Op: "lock", Name: "jobs", Attempts: 1, N: 5, Quorum: 3, Refused: 5}
	h.obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeRefused,
		Refused: 5, Nodes: 5, Quorum: 3, Latency: time.Millisecond, Err: qe})
	s := h.only(t, "redlock.TryLock")
	if s.Status().Code != codes.Unset {
		t.Errorf("refused TryLock status %v, want Unset", s.Status())
	}
	if _, ok := attrs(s.Attributes())["redlock.fencing.token"]; ok {
		t.Error("a span without a token carries redlock.fencing.token")
	}
}

// TestSpanNodeFailures: a round that failed is an Error span with the
// error's message, and one event per failed node with its address and
// kind.
func TestSpanNodeFailures(t *testing.T) {
	h := newHarness(t)
	ctx, caller := h.parent(t)
	nodes := &multierror.Error{Errors: []error{
		&redlock.NodeError{Addr: "a:6379", Err: fmt.Errorf("%w: no answer within 50ms", redlock.ErrNodeTimeout)},
		&redlock.NodeError{Addr: "b:6379", Err: redis.Error("READONLY You can't write against a read only replica.")},
		&redlock.NodeError{Addr: "c:6379", Err: errors.New("dial tcp c:6379: connect: connection refused")},
		&redlock.NodeError{Addr: "d:6379", Err: fmt.Errorf("script not loaded on the node: %v", redis.Error("NOSCRIPT No matching script."))},
		&redlock.NodeError{Addr: "e:6379", Err: redlock.ErrClosed},
	}}
	qe := &redlock.QuorumError{Op: "extend", Name: "jobs", Attempts: 1, N: 5, Quorum: 3, Failed: 5, Nodes: nodes}
	before := time.Now()
	h.obs.Observe(redlock.Event{Kind: redlock.EventExtend, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeFailed,
		Failed: 5, Nodes: 5, Quorum: 3, Latency: 50 * time.Millisecond, Err: fmt.Errorf("wrapped: %w", qe)})
	s := h.only(t, "redlock.Extend")
	checkTiming(t, s, before, 50*time.Millisecond, caller.SpanContext())
	if s.Status().Code != codes.Error || s.Status().Description != "wrapped: "+qe.Error() {
		t.Errorf("status %v, want Error with the error's message", s.Status())
	}
	a := attrs(s.Attributes())
	if a["error.type"].AsString() != "failed" || a["redlock.extend.auto"].AsBool() {
		t.Errorf("error.type %q, auto %v; want failed, false", a["error.type"].AsString(), a["redlock.extend.auto"].AsBool())
	}
	want := [][2]string{{"a:6379", "timeout"}, {"b:6379", "error_reply"}, {"c:6379", "connection"}, {"d:6379", "noscript"}, {"e:6379", "closed"}}
	events := s.Events()
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, ev := range events {
		ea := attrs(ev.Attributes)
		if ev.Name != "redlock.node.failure" || ea["redlock.node"].AsString() != want[i][0] || ea["error.type"].AsString() != want[i][1] {
			t.Errorf("event %d: %s {node %s, kind %s}, want redlock.node.failure {%s, %s}", i, ev.Name, ea["redlock.node"].AsString(), ea["error.type"].AsString(), want[i][0], want[i][1])
		}
		if ea["error.message"].AsString() != nodes.Errors[i].(*redlock.NodeError).Err.Error() {
			t.Errorf("event %d message %q", i, ea["error.message"].AsString())
		}
		if !ev.Time.Equal(s.EndTime()) {
			t.Errorf("event %d at %v, want the round's end %v", i, ev.Time, s.EndTime())
		}
	}
}

// TestSpanLock: a Lock call is a span covering its wait, with its attempt
// count; each attempt is a span beside it, under the same parent. A Lock
// that gives up refused is an error; its refused attempts are not.
func TestSpanLock(t *testing.T) {
	h := newHarness(t)
	ctx, caller := h.parent(t)
	before := time.Now()
	for range 2 {
		h.obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeRefused,
			InLock: true, Refused: 3, Nodes: 3, Quorum: 2, Attempts: 1, Latency: time.Millisecond})
	}
	h.obs.Observe(redlock.Event{Kind: redlock.EventLock, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeRefused,
		Refused: 3, Nodes: 3, Quorum: 2, Attempts: 2, Latency: 20 * time.Millisecond,
		Err: &redlock.QuorumError{Op: "lock", Name: "jobs", Attempts: 2, N: 3, Quorum: 2, Refused: 3}})
	lock := h.only(t, "redlock.Lock")
	checkTiming(t, lock, before, 20*time.Millisecond, caller.SpanContext())
	if n := attrs(lock.Attributes())["redlock.attempts"].AsInt64(); n != 2 {
		t.Errorf("redlock.attempts = %d, want 2", n)
	}
	if lock.Status().Code != codes.Error {
		t.Errorf("Lock that gave up: status %v, want Error", lock.Status())
	}
	attempts := h.spanNamed("redlock.Lock.attempt")
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans, want 2", len(attempts))
	}
	for _, s := range attempts {
		checkTiming(t, s, before, time.Millisecond, caller.SpanContext())
		if s.Status().Code != codes.Unset {
			t.Errorf("refused attempt status %v, want Unset", s.Status())
		}
	}
	if h.spanNamed("redlock.TryLock") != nil {
		t.Error("a Lock's attempt made a redlock.TryLock span")
	}
}

// TestSpanBackground: auto-extension's events carry the client's own
// context: their spans are roots. A release, and an event with no context
// at all, are recorded too; losses, node failures and reconnections make
// no span.
func TestSpanBackground(t *testing.T) {
	h := newHarness(t)
	h.obs.Observe(redlock.Event{Kind: redlock.EventExtend, Ctx: context.Background(), Name: "jobs", Outcome: redlock.OutcomeOK, Auto: true, Latency: time.Millisecond})
	h.obs.Observe(redlock.Event{Kind: redlock.EventRelease, Name: "jobs", Outcome: redlock.OutcomeOK, Latency: time.Millisecond, HeldDelta: -1})
	h.obs.Observe(redlock.Event{Kind: redlock.EventLost, Ctx: context.Background(), Name: "jobs", Cause: redlock.LostNotHeld})
	h.obs.Observe(redlock.Event{Kind: redlock.EventNodeFailure, Ctx: context.Background(), Node: "a:1", Failure: redlock.FailureTimeout})
	h.obs.Observe(redlock.Event{Kind: redlock.EventReconnect, Ctx: context.Background(), Node: "a:1"})
	ext := h.only(t, "redlock.Extend")
	if ext.Parent().IsValid() || !attrs(ext.Attributes())["redlock.extend.auto"].AsBool() {
		t.Errorf("auto-extension span parent %v, auto %v; want a root, true", ext.Parent(), attrs(ext.Attributes())["redlock.extend.auto"])
	}
	if un := h.only(t, "redlock.Unlock"); un.Parent().IsValid() || un.Status().Code != codes.Unset {
		t.Errorf("Unlock without context: parent %v, status %v; want a root, Unset", un.Parent(), un.Status())
	}
	if n := len(h.spans.Ended()); n != 2 {
		t.Errorf("%d spans %v, want 2", n, slicesOf(h.spans.Ended()))
	}
}

// TestSpanSampledOut: with every span sampled out, the metrics are
// recorded and no span is.
func TestSpanSampledOut(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	h := newHarness(t)
	obs, err := redlockotel.New(redlockotel.WithTracerProvider(tp), redlockotel.WithMeterProvider(h.mp))
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: context.Background(), Name: "x", Outcome: redlock.OutcomeFailed, Latency: time.Millisecond,
		Err: &redlock.QuorumError{Op: "lock", Name: "x", N: 1, Quorum: 1, Failed: 1}})
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans sampled out yet recorded", n)
	}
	histPoint(t, h.metrics(t), "redlock.acquire.duration", outcome("failed"), call("try_lock"))
}

// TestSpanCanceledContext: a call whose context was canceled reports with
// that context; its span and data point are recorded all the same, under
// the caller's span, as an Error.
func TestSpanCanceledContext(t *testing.T) {
	h := newHarness(t)
	parentCtx, caller := h.parent(t)
	ctx, cancel := context.WithCancel(parentCtx)
	cancel()
	before := time.Now()
	h.obs.Observe(redlock.Event{Kind: redlock.EventLock, Ctx: ctx, Name: "jobs", Outcome: redlock.OutcomeCanceled, Attempts: 3,
		Latency: 30 * time.Millisecond, Err: fmt.Errorf("redlock: lock %q not acquired: %w", "jobs", context.Canceled)})
	s := h.only(t, "redlock.Lock")
	checkTiming(t, s, before, 30*time.Millisecond, caller.SpanContext())
	if s.Status().Code != codes.Error || attrs(s.Attributes())["error.type"].AsString() != "canceled" {
		t.Errorf("status %v, error.type %v; want Error, canceled", s.Status(), attrs(s.Attributes())["error.type"])
	}
	if dp := histPoint(t, h.metrics(t), "redlock.wait.duration", outcome("canceled")); dp.Count != 1 {
		t.Errorf("wait {canceled} count %d, want 1", dp.Count)
	}
}
