// Package promtext keeps a few metrics (counters, gauges, histograms with
// fixed buckets, each with labels) and writes them in the Prometheus text
// exposition format, version 0.0.4: what `redlock demo --metrics` serves.
//
// Why not prometheus/client_golang: the core module keeps to redigo,
// go-multierror, dockertest and goleak (heavy dependencies live in modules
// of their own, such as the OpenTelemetry adapter), and the command lives
// in the core module. The text format is small and stable; this package
// writes it exactly (# HELP, # TYPE, _bucket{le=...}, _sum, _count) and
// Parse checks it in tests.
package promtext

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families and writes them. It is safe for
// concurrent use.
type Registry struct {
	mu       sync.Mutex
	families []*family
}

type family struct {
	name, help, typ string
	labels          []string
	buckets         []float64 // histograms: upper bounds, increasing, without +Inf
	series          map[string]*series
}

type series struct {
	values []string // label values, in the family's label order
	value  float64  // counter, gauge
	counts []uint64 // histogram: per bucket (not cumulative), then +Inf
	sum    float64
	count  uint64
}

func (r *Registry) add(name, help, typ string, buckets []float64, labels []string) *family {
	f := &family{name: name, help: help, typ: typ, labels: labels, buckets: buckets, series: map[string]*series{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range r.families {
		if old.name == name {
			panic("promtext: metric " + name + " registered twice") // a programming error of the caller
		}
	}
	r.families = append(r.families, f)
	if len(labels) == 0 {
		f.get(nil) // an unlabelled metric shows 0 from the start
	}
	return f
}

// get returns the series of the label values, made if new; r.mu is held.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("promtext: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	s := f.series[key]
	if s == nil {
		s = &series{values: slices.Clone(values)}
		if f.typ == "histogram" {
			s.counts = make([]uint64, len(f.buckets)+1)
		}
		f.series[key] = s
	}
	return s
}

// Counter is a family of counters: they only go up.
type Counter struct {
	r *Registry
	f *family
}

// Counter registers a counter family; its name should end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	return &Counter{r, r.add(name, help, "counter", nil, labels)}
}

// Add adds v (>= 0) to the counter of the label values.
func (c *Counter) Add(v float64, values ...string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.f.get(values).value += v
}

// Inc adds 1.
func (c *Counter) Inc(values ...string) { c.Add(1, values...) }

// Gauge is a family of values that go up and down.
type Gauge struct {
	r *Registry
	f *family
}

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	return &Gauge{r, r.add(name, help, "gauge", nil, labels)}
}

// Add adds v (which may be negative) to the gauge of the label values.
func (g *Gauge) Add(v float64, values ...string) {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	g.f.get(values).value += v
}

// Histogram is a family of distributions over fixed buckets.
type Histogram struct {
	r *Registry
	f *family
}

// Histogram registers a histogram family with the buckets' upper bounds,
// in increasing order (+Inf is implied).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Histogram {
	if !slices.IsSorted(buckets) {
		panic("promtext: buckets of " + name + " not in increasing order")
	}
	return &Histogram{r, r.add(name, help, "histogram", slices.Clone(buckets), labels)}
}

// Observe counts v in the distribution of the label values.
func (h *Histogram) Observe(v float64, values ...string) {
	i, _ := slices.BinarySearch(h.f.buckets, v) // the first bound >= v
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	s := h.f.get(values)
	s.counts[i]++
	s.sum += v
	s.count++
}

// WriteTo writes every family in the text format, in registration order,
// each family's series sorted by their label values.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	r.mu.Lock()
	for _, f := range r.families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s := f.series[k]
			if f.typ != "histogram" {
				writeSample(&b, f.name, f.labels, s.values, "", s.value)
				continue
			}
			var cum uint64
			for i, bound := range f.buckets {
				cum += s.counts[i]
				writeSample(&b, f.name+"_bucket", f.labels, s.values, formatFloat(bound), float64(cum))
			}
			writeSample(&b, f.name+"_bucket", f.labels, s.values, "+Inf", float64(s.count))
			writeSample(&b, f.name+"_sum", f.labels, s.values, "", s.sum)
			writeSample(&b, f.name+"_count", f.labels, s.values, "", float64(s.count))
		}
	}
	r.mu.Unlock()
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP writes the metrics: the registry is the handler of /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	r.WriteTo(w)
}

func writeSample(b *strings.Builder, name string, labels, values []string, le string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 || le != "" {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "%s=\"%s\"", l, escapeLabel(values[i]))
		}
		if le != "" {
			if len(labels) > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "le=\"%s\"", le)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

// formatFloat writes a value as the format wants it: Go's shortest
// representation, +Inf, -Inf, NaN.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
