package redlockotel_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/quorumlock/quorumlock/internal/redistest"
	redlockotel "github.com/quorumlock/quorumlock/otel"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// BenchmarkObserve measures what Observe adds to each event on the SDK's
// providers: a manual reader (nothing exported meanwhile) and every span
// sampled and ended, with no processor to export it. The -metrics cases
// leave tracing off (a no-op tracer provider), the -name case adds the
// lock's name to the data points.
func BenchmarkObserve(b *testing.B) {
	qe := &redlock.QuorumError{Op: "lock", Name: "jobs", N: 5, Quorum: 3, Refused: 5}
	events := []struct {
		name string
		e    redlock.Event
	}{
		{"attempt", redlock.Event{Kind: redlock.EventAttempt, Name: "jobs", Outcome: redlock.OutcomeOK, Granted: 5, Nodes: 5, Quorum: 3, Attempts: 1, Latency: time.Millisecond, HeldDelta: 1}},
		{"attempt-refused", redlock.Event{Kind: redlock.EventAttempt, Name: "jobs", Outcome: redlock.OutcomeRefused, Refused: 5, Nodes: 5, Quorum: 3, Attempts: 1, Latency: time.Millisecond, Err: qe}},
		{"lock", redlock.Event{Kind: redlock.EventLock, Name: "jobs", Outcome: redlock.OutcomeOK, Granted: 5, Nodes: 5, Quorum: 3, Attempts: 2, Latency: 10 * time.Millisecond}},
		{"extend", redlock.Event{Kind: redlock.EventExtend, Name: "jobs", Outcome: redlock.OutcomeOK, Auto: true, Granted: 5, Nodes: 5, Quorum: 3, Latency: time.Millisecond}},
		{"release", redlock.Event{Kind: redlock.EventRelease, Name: "jobs", Outcome: redlock.OutcomeOK, Granted: 5, Nodes: 5, Quorum: 3, Latency: time.Millisecond, HeldDelta: -1}},
		{"lost", redlock.Event{Kind: redlock.EventLost, Name: "jobs", Cause: redlock.LostExpired, HeldDelta: -1}},
		{"node_failure", redlock.Event{Kind: redlock.EventNodeFailure, Node: "10.0.0.1:6379", Failure: redlock.FailureTimeout}},
		{"reconnect", redlock.Event{Kind: redlock.EventReconnect, Node: "10.0.0.1:6379"}},
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	full := newObserver(b, redlockotel.WithMeterProvider(mp), redlockotel.WithTracerProvider(tp))
	metricsOnly := newObserver(b, redlockotel.WithMeterProvider(mp), redlockotel.WithTracerProvider(noop.NewTracerProvider()))
	named := newObserver(b, redlockotel.WithMeterProvider(mp), redlockotel.WithTracerProvider(noop.NewTracerProvider()), redlockotel.WithLockNameAttribute())

	ctx, span := tp.Tracer("caller").Start(context.Background(), "caller")
	defer span.End()
	for _, c := range events {
		e := c.e
		e.Ctx = ctx
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				full.Observe(e)
			}
		})
	}
	for _, c := range events[:1] {
		e := c.e
		e.Ctx = ctx
		b.Run(c.name+"-metrics", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				metricsOnly.Observe(e)
			}
		})
		b.Run(c.name+"-metrics-name", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				named.Observe(e)
			}
		})
	}
}

func newObserver(tb testing.TB, opts ...redlockotel.Option) *redlockotel.Observer {
	tb.Helper()
	obs, err := redlockotel.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return obs
}

// BenchmarkClient measures one TryLock+Unlock on five local redis-server
// nodes, side by side on the same nodes: with no observer, and with this
// adapter on the SDK's providers (a manual reader; every span sampled and
// ended, none exported). The difference is the adapter's cost end to end.
// The node timeout is 1s so that a loaded machine's pauses fail no call.
func BenchmarkClient(b *testing.B) {
	cluster := redistest.New(b, 5)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	for _, tc := range []struct {
		name string
		opts []redlock.Option
	}{
		{"none", nil},
		{"otel", []redlock.Option{redlock.WithObserver(newObserver(b, redlockotel.WithMeterProvider(mp), redlockotel.WithTracerProvider(tp)))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var pools []pool.Pool
			for _, addr := range cluster.Addrs() {
				p := pool.New(addr)
				defer p.Close()
				pools = append(pools, p)
			}
			cl, err := redlock.New(pools, append(tc.opts, redlock.WithNodeTimeout(time.Second))...)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				l, err := cl.TryLock(ctx, "bench-otel")
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
