package redlockotel

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumlock/quorumlock/redlock"
)

// Option configures New.
type Option func(*config)

type config struct {
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
	lockName       bool
	attrs          []attribute.KeyValue

	// errs collects what an option found wrong; New returns it.
	errs []error
}

// WithMeterProvider sets where the instruments are created. Default: the
// global provider (otel.GetMeterProvider()), as it is when New is called:
// the global one delegates to a provider set later.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.errs = append(c.errs, fmt.Errorf("%w: WithMeterProvider(nil): pass a provider, or leave the option out for the global one", redlock.ErrInvalidOption))
			return
		}
		c.meterProvider = mp
	}
}

// WithTracerProvider sets where the spans are created. Default: the global
// provider (otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.errs = append(c.errs, fmt.Errorf("%w: WithTracerProvider(nil): pass a provider, or leave the option out for the global one", redlock.ErrInvalidOption))
			return
		}
		c.tracerProvider = tp
	}
}

// WithLockNameAttribute puts the lock's name (redlock.lock.name) on the
// metrics' data points too. Default: off, and the name is on spans only.
//
// Off by default because a metric attribute makes one time series per
// value: a program that locks "order-" plus an id would create series
// without bound, in memory here and in the backend. Turn it on when the
// lock names are a small fixed set. It also costs an allocation per event,
// where the default records from precomputed attribute sets.
func WithLockNameAttribute() Option { return func(c *config) { c.lockName = true } }

// WithAttributes adds attributes to every data point and span, such as
// the name of the client's Redis deployment when a program has several.
// Default: none. A key must be non-empty and may not be one of this
// package's own (those starting with "redlock." or "error.").
func WithAttributes(kvs ...attribute.KeyValue) Option {
	return func(c *config) {
		for _, kv := range kvs {
			switch key := string(kv.Key); {
			case !kv.Valid():
				c.errs = append(c.errs, fmt.Errorf("%w: WithAttributes: an attribute has an empty key (value %s)", redlock.ErrInvalidOption, kv.Value.Emit()))
			case strings.HasPrefix(key, "redlock.") || strings.HasPrefix(key, "error."):
				c.errs = append(c.errs, fmt.Errorf("%w: WithAttributes: key %q is one of this package's own", redlock.ErrInvalidOption, key))
			default:
				c.attrs = append(c.attrs, kv)
			}
		}
	}
}

func defaultConfig() config {
	return config{meterProvider: otel.GetMeterProvider(), tracerProvider: otel.GetTracerProvider()}
}
