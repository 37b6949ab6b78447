package redlockotel_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	redlockotel "github.com/quorumlock/quorumlock/otel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an Observer on the SDK's providers, read in memory: the
// metrics by a manual reader, the ended spans by a span recorder.
type harness struct {
	obs    *redlockotel.Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newHarness(t testing.TB, opts ...redlockotel.Option) *harness {
	t.Helper()
	h := &harness{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	h.mp = mp
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		h.tp.Shutdown(context.Background())
	})
	obs, err := redlockotel.New(append([]redlockotel.Option{
		redlockotel.WithMeterProvider(mp), redlockotel.WithTracerProvider(h.tp),
	}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.obs = obs
	return h
}

// metrics collects the instruments' data, by instrument name.
func (h *harness) metrics(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != redlockotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, redlockotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	return got
}

// histPoint returns the data point of histogram name with exactly the
// attributes kvs, failing the test if there is none.
func histPoint(t testing.TB, ms map[string]metricdata.Metrics, name string, kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	hist, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 histogram", name, m.Data)
	}
	want := attribute.NewSet(kvs...)
	for _, dp := range hist.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp
		}
	}
	t.Fatalf("%s has no point {%s}; it has %s", name, want.Encoded(attribute.DefaultEncoder()), histSets(hist.DataPoints))
	return metricdata.HistogramDataPoint[float64]{}
}

func histSets(dps []metricdata.HistogramDataPoint[float64]) string {
	s := ""
	for _, dp := range dps {
		s += "{" + dp.Attributes.Encoded(attribute.DefaultEncoder()) + "} "
	}
	return s
}

// sumValue returns the value of counter (or up-down counter) name at the
// attributes kvs, and whether the point exists.
func sumValue(t testing.TB, ms map[string]metricdata.Metrics, name string, kvs ...attribute.KeyValue) (int64, bool) {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return 0, false
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", name, m.Data)
	}
	want := attribute.NewSet(kvs...)
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value, true
		}
	}
	return 0, false
}

// spanNamed returns the ended spans called name.
func (h *harness) spanNamed(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns a span's (or event's) attributes by key.
func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
