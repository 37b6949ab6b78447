package redlockotel

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumlock/quorumlock/redlock"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/quorumlock/quorumlock/otel"

// The attribute keys of the data points and spans (see the package doc).
const (
	keyName     = attribute.Key("redlock.lock.name")
	keyOutcome  = attribute.Key("redlock.outcome")
	keyCall     = attribute.Key("redlock.call")
	keyAuto     = attribute.Key("redlock.extend.auto")
	keyCause    = attribute.Key("redlock.lost.cause")
	keyNode     = attribute.Key("redlock.node")
	keyErrType  = attribute.Key("error.type")
	keyErrMsg   = attribute.Key("error.message")
	keyGranted  = attribute.Key("redlock.nodes.granted")
	keyRefused  = attribute.Key("redlock.nodes.refused")
	keyFailed   = attribute.Key("redlock.nodes.failed")
	keyNodes    = attribute.Key("redlock.nodes")
	keyQuorum   = attribute.Key("redlock.quorum")
	keyAttempts = attribute.Key("redlock.attempts")
	keyToken    = attribute.Key("redlock.fencing.token")
)

// durationBounds are the histograms' buckets, in seconds: a round on local
// nodes takes a fraction of a millisecond, one across regions tens of
// milliseconds, and a Lock call's wait up to its tries times the retry
// delay, or a holder's whole hold on a busy lock.
var durationBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Outcomes, causes and failure kinds index the precomputed attribute sets;
// a value past the last known one (from a newer core) is "unknown", index 0.
const (
	nOutcomes = int(redlock.OutcomeCanceled) + 1
	nCauses   = int(redlock.LostMaxHold) + 1
)

// Observer turns a redlock.Client's events into OpenTelemetry metrics and
// spans: give it to the client with redlock.WithObserver. It is safe for
// concurrent use; one Observer may serve several clients.
type Observer struct {
	tracer   trace.Tracer
	lockName bool
	attrs    []attribute.KeyValue // WithAttributes

	acquire, wait, extend, release metric.Float64Histogram
	lost, failures, reconnects     metric.Int64Counter
	// Outcome counters, one per operation, on the histograms' attribute
	// sets: the histograms' counts carry the same figures, but a counter
	// is what dashboards and alerts on outcomes usually query.
	attempts, locks, extends, releases metric.Int64Counter
	held                               metric.Int64UpDownCounter

	// The attribute sets of every combination, made once, so that an
	// event records without allocating (unless WithLockNameAttribute).
	acquireP [nOutcomes][2]point // [outcome][InLock]
	waitP    [nOutcomes]point
	extendP  [nOutcomes][2]point // [outcome][Auto]
	releaseP [nOutcomes]point
	lostP    [nCauses]point
	heldP    point
	nodeP    sync.Map // nodeKey -> *point: a client's nodes, a bounded set
}

// point is one attribute set, ready to pass to an instrument.
type point struct {
	attrs []attribute.KeyValue
	rec   []metric.RecordOption
	add   []metric.AddOption
}

func newPoint(kvs []attribute.KeyValue) point {
	set := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return point{attrs: kvs, rec: []metric.RecordOption{set}, add: []metric.AddOption{set}}
}

// nodeKey names a node's data point: its failures of a kind, or its
// reconnections (kind "").
type nodeKey struct {
	node string
	kind string
}

// New returns an Observer that records on the providers given (default:
// the global ones). It returns an error wrapping redlock.ErrInvalidOption
// for a bad option, or the provider's error if an instrument cannot be
// made.
func New(opts ...Option) (*Observer, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	o := &Observer{
		tracer:   cfg.tracerProvider.Tracer(ScopeName),
		lockName: cfg.lockName,
		attrs:    cfg.attrs,
	}
	if err := o.instruments(cfg.meterProvider.Meter(ScopeName)); err != nil {
		return nil, err
	}
	o.points()
	return o, nil
}

// instruments creates the instruments (see the package doc for what each
// one counts); it returns the provider's errors, if any.
func (o *Observer) instruments(m metric.Meter) error {
	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBounds...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	o.acquire = hist("redlock.acquire.duration", "Duration of one acquisition attempt's round on the nodes, TryLock's or one of Lock's.")
	o.wait = hist("redlock.wait.duration", "Duration of a Lock call, from the call to the lock or the give-up: the wait.")
	o.extend = hist("redlock.extend.duration", "Duration of an extension's round on the nodes, the caller's or auto-extension's.")
	o.release = hist("redlock.release.duration", "Duration of an Unlock's round on the nodes.")
	o.lost = counter("redlock.locks.lost", "{lock}", "Locks lost before their holder released them.")
	o.failures = counter("redlock.node.failures", "{failure}", "Requests to one node that failed.")
	o.reconnects = counter("redlock.node.reconnects", "{reconnect}", "Node connections closed and replaced.")
	o.attempts = counter("redlock.acquire.attempts", "{attempt}", "Acquisition attempts, TryLock's or one of Lock's, by outcome.")
	o.locks = counter("redlock.lock.calls", "{call}", "Lock calls ended, with the lock or without, by outcome.")
	o.extends = counter("redlock.extend.calls", "{call}", "Extensions decided, the caller's or auto-extension's, by outcome.")
	o.releases = counter("redlock.release.calls", "{call}", "Unlock calls decided, by outcome.")
	var err error
	o.held, err = m.Int64UpDownCounter("redlock.locks.held", metric.WithUnit("{lock}"),
		metric.WithDescription("Locks held now: granted and not yet released or lost."))
	return errors.Join(append(errs, err)...)
}

// points makes the attribute set of every combination of the low
// cardinality attributes.
func (o *Observer) points() {
	with := func(kvs ...attribute.KeyValue) point {
		return newPoint(append(kvs, o.attrs...))
	}
	calls := [2]string{"try_lock", "lock"}
	for i := range nOutcomes {
		out := keyOutcome.String(redlock.Outcome(i).String())
		for j := range 2 {
			o.acquireP[i][j] = with(out, keyCall.String(calls[j]))
			o.extendP[i][j] = with(out, keyAuto.Bool(j == 1))
		}
		o.waitP[i] = with(out)
		o.releaseP[i] = with(out)
	}
	for i := range nCauses {
		o.lostP[i] = with(keyCause.String(redlock.LostCause(i).String()))
	}
	o.heldP = with()
}

// Observe records e: a histogram point and a span for a round or a Lock
// call, a counter for a loss, a node failure or a reconnection, and the
// change of the locks held. It implements redlock.Observer.
func (o *Observer) Observe(e redlock.Event) {
	ctx := e.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	switch e.Kind {
	case redlock.EventAttempt:
		p := &o.acquireP[outcome(e.Outcome)][b2i(e.InLock)]
		o.acquire.Record(ctx, e.Latency.Seconds(), o.rec(p, e.Name)...)
		o.attempts.Add(ctx, 1, o.add(p, e.Name)...)
		name := spanTryLock
		if e.InLock {
			name = spanAttempt
		}
		o.span(ctx, name, &e)
	case redlock.EventLock:
		p := &o.waitP[outcome(e.Outcome)]
		o.wait.Record(ctx, e.Latency.Seconds(), o.rec(p, e.Name)...)
		o.locks.Add(ctx, 1, o.add(p, e.Name)...)
		o.span(ctx, spanLock, &e)
	case redlock.EventExtend:
		p := &o.extendP[outcome(e.Outcome)][b2i(e.Auto)]
		o.extend.Record(ctx, e.Latency.Seconds(), o.rec(p, e.Name)...)
		o.extends.Add(ctx, 1, o.add(p, e.Name)...)
		o.span(ctx, spanExtend, &e)
	case redlock.EventRelease:
		p := &o.releaseP[outcome(e.Outcome)]
		o.release.Record(ctx, e.Latency.Seconds(), o.rec(p, e.Name)...)
		o.releases.Add(ctx, 1, o.add(p, e.Name)...)
		o.span(ctx, spanUnlock, &e)
	case redlock.EventLost:
		c := int(e.Cause)
		if c >= nCauses {
			c = 0
		}
		o.lost.Add(ctx, 1, o.add(&o.lostP[c], e.Name)...)
	case redlock.EventNodeFailure:
		o.failures.Add(ctx, 1, o.node(e.Node, e.Failure.String()).add...)
	case redlock.EventReconnect:
		o.reconnects.Add(ctx, 1, o.node(e.Node, "").add...)
	}
	if e.HeldDelta != 0 {
		o.held.Add(ctx, int64(e.HeldDelta), o.add(&o.heldP, e.Name)...)
	}
}

// rec returns p's options, with the lock's name when WithLockNameAttribute.
func (o *Observer) rec(p *point, name string) []metric.RecordOption {
	if !o.lockName {
		return p.rec
	}
	return []metric.RecordOption{metric.WithAttributeSet(named(p, name))}
}

// add is rec for counters.
func (o *Observer) add(p *point, name string) []metric.AddOption {
	if !o.lockName {
		return p.add
	}
	return []metric.AddOption{metric.WithAttributeSet(named(p, name))}
}

func named(p *point, name string) attribute.Set {
	kvs := make([]attribute.KeyValue, 0, len(p.attrs)+1)
	return attribute.NewSet(append(append(kvs, p.attrs...), keyName.String(name))...)
}

// node returns the data point of a node's failures of a kind (kind ""
// for its reconnections), made on first use.
func (o *Observer) node(addr, kind string) *point {
	k := nodeKey{addr, kind}
	if p, ok := o.nodeP.Load(k); ok {
		return p.(*point)
	}
	kvs := []attribute.KeyValue{keyNode.String(addr)}
	if kind != "" {
		kvs = append(kvs, keyErrType.String(kind))
	}
	p := newPoint(append(kvs, o.attrs...))
	actual, _ := o.nodeP.LoadOrStore(k, &p)
	return actual.(*point)
}

// outcome is the index of o's attribute sets.
func outcome(o redlock.Outcome) int {
	if int(o) >= nOutcomes {
		return 0
	}
	return int(o)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var _ redlock.Observer = (*Observer)(nil)
