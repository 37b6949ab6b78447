package redlockotel_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	redlockotel "github.com/quorumlock/quorumlock/otel"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Example_prometheus exports the metrics to Prometheus: the OpenTelemetry
// Prometheus exporter registers them, promhttp serves them on /metrics. A
// client would be made with redlock.WithObserver(obs) (see Example); here
// events are fed to the observer directly, as a client does, so that the
// example runs without Redis, and /metrics is read once.
func Example_prometheus() {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	obs, err := redlockotel.New(redlockotel.WithMeterProvider(provider))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// What a client reports: a TryLock granted, a node timing out, a
	// holder's lock lost when auto-extension gave up.
	ctx := context.Background()
	obs.Observe(redlock.Event{Kind: redlock.EventAttempt, Ctx: ctx, Name: "report", Outcome: redlock.OutcomeOK,
		Granted: 3, Nodes: 3, Quorum: 2, Attempts: 1, Latency: 2 * time.Millisecond, HeldDelta: 1})
	obs.Observe(redlock.Event{Kind: redlock.EventNodeFailure, Ctx: ctx, Node: "redis-b:6379", Failure: redlock.FailureTimeout})
	obs.Observe(redlock.Event{Kind: redlock.EventLost, Ctx: ctx, Name: "report", Cause: redlock.LostExtendFailed, HeldDelta: -1})

	// A scrape of /metrics.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	lines := bufio.NewScanner(rec.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "redlock_acquire_duration_seconds_count") || strings.HasPrefix(line, "redlock_locks") ||
			strings.HasPrefix(line, "redlock_node_failures") {
			fmt.Println(line)
		}
	}
	// Output:
	// redlock_acquire_duration_seconds_count{redlock_call="try_lock",redlock_outcome="ok"} 1
	// redlock_locks_held 0
	// redlock_locks_lost_total{redlock_lost_cause="extend_failed"} 1
	// redlock_node_failures_total{error_type="timeout",redlock_node="redis-b:6379"} 1
}

// Example wires the observer into a client and serves /metrics for
// Prometheus to scrape; spans go to the global tracer provider, which a
// program sets up with its exporter (go.opentelemetry.io/otel/sdk/trace).
// It needs Redis nodes, so it is compiled, not run.
func Example() {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	obs, err := redlockotel.New(redlockotel.WithMeterProvider(provider))
	if err != nil {
		log.Fatal(err)
	}

	var pools []pool.Pool
	for _, addr := range []string{"redis-a:6379", "redis-b:6379", "redis-c:6379"} {
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	client, err := redlock.New(pools, redlock.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	go func() { log.Fatal(http.ListenAndServe(":9464", nil)) }()

	lock, err := client.Lock(context.Background(), "nightly-report")
	if err != nil {
		log.Fatal(err)
	}
	defer lock.Unlock(context.Background())
	// ... the work, while time.Now() is before lock.Until()
}
