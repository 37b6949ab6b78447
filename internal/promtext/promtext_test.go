package promtext

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The registry writes the text format exactly: HELP and TYPE before each
// family, sorted series, escaped label values, cumulative buckets ending
// with +Inf, then _sum and _count; and Parse reads it back.
func TestWriteExact(t *testing.T) {
	var r Registry
	c := r.Counter("x_total", "Things done,\nby outcome.", "outcome")
	g := r.Gauge("x_held", "Held now.")
	h := r.Histogram("x_seconds", "How long.", []float64{0.01, 0.1, 1})
	c.Inc("ok")
	c.Add(2, `we"ird\`)
	g.Add(1)
	g.Add(-1)
	g.Add(1)
	h.Observe(0.005)
	h.Observe(0.1)
	h.Observe(3)
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP x_total Things done,\nby outcome.
# TYPE x_total counter
x_total{outcome="ok"} 1
x_total{outcome="we\"ird\\"} 2
# HELP x_held Held now.
# TYPE x_held gauge
x_held 1
# HELP x_seconds How long.
# TYPE x_seconds histogram
x_seconds_bucket{le="0.01"} 1
x_seconds_bucket{le="0.1"} 2
x_seconds_bucket{le="1"} 2
x_seconds_bucket{le="+Inf"} 3
x_seconds_sum 3.105
x_seconds_count 3
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	fams, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if f := fams["x_total"]; f.Type != "counter" || len(f.Samples) != 2 || f.Samples[1].Labels["outcome"] != `we"ird\` {
		t.Fatalf("parsed x_total: %+v", f)
	}
	if f := fams["x_seconds"]; f.Type != "histogram" || len(f.Samples) != 6 {
		t.Fatalf("parsed x_seconds: %+v", f)
	}

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType || rec.Body.String() != want {
		t.Fatalf("served %q:\n%s", ct, rec.Body.String())
	}
}

// Parse refuses what a scraper would: a sample with no TYPE before it, bad
// names or values, buckets that are not cumulative or lack +Inf.
func TestParseRejects(t *testing.T) {
	for _, bad := range []string{
		"x_total 1\n",
		"# TYPE x_total counter\nx_total{a=\"1\"} one\n",
		"# TYPE x_total counter\n1x 1\n",
		"# TYPE x_total counter\nx_total{a=\"1} 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE x counter\n# TYPE x counter\n",
	} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}
