package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/promtext"
)

var metricsAddrRE = regexp.MustCompile(`redlock demo: metrics at (http://\S+/metrics)\n`)

// `redlock demo --metrics 127.0.0.1:0` prints where it serves, and a scrape
// while it runs is well-formed Prometheus text (every sample under a
// # TYPE, histograms cumulative with +Inf = _count) holding the families
// fed by the observer seam, with attempts counted.
func TestDemoServesMetrics(t *testing.T) {
	p := startBin(t, nil, "demo", "--duration", "8s", "--workers", "4", "--metrics", "127.0.0.1:0")
	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		if m := metricsAddrRE.FindStringSubmatch(p.stderr.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case <-p.done:
			t.Fatalf("demo exited before printing the metrics address: %+v", p.res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address on stderr within 30s: %q", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var fams map[string]*promtext.Family
	for {
		body, err := scrape(url)
		if err != nil {
			t.Fatalf("scrape %s while the demo runs: %v", url, err)
		}
		if fams, err = promtext.Parse(strings.NewReader(body)); err != nil {
			t.Fatalf("scrape does not parse: %v\n%s", err, body)
		}
		if total(fams["redlock_acquire_attempts_total"]) > 0 && total(fams["redlock_lock_calls_total"]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempts counted within 30s:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name, typ := range map[string]string{
		"redlock_acquire_attempts_total": "counter", "redlock_acquire_seconds": "histogram",
		"redlock_lock_calls_total": "counter", "redlock_wait_seconds": "histogram",
		"redlock_extend_total": "counter", "redlock_release_total": "counter",
		"redlock_lost_total": "counter", "redlock_node_failures_total": "counter",
		"redlock_reconnects_total": "counter", "redlock_locks_held": "gauge",
	} {
		if f := fams[name]; f == nil || f.Type != typ {
			t.Errorf("family %s: %+v; want type %s", name, f, typ)
		}
	}
	for _, s := range fams["redlock_acquire_attempts_total"].Samples {
		if o := s.Labels["outcome"]; !strings.Contains(" ok refused failed expired canceled ", " "+o+" ") {
			t.Errorf("attempt outcome label %q", o)
		}
	}
	r := p.wait()
	if r.code != 0 {
		t.Fatalf("demo --metrics: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := scrape(url); err == nil {
		t.Errorf("%s still served after the demo exited", url)
	}
}

// total sums a family's samples (0 for a missing family).
func total(f *promtext.Family) float64 {
	if f == nil {
		return 0
	}
	var n float64
	for _, s := range f.Samples {
		n += s.Value
	}
	return n
}

func scrape(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != promtext.ContentType {
		return "", fmt.Errorf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	return string(b), nil
}

// A --metrics value that is no HOST:PORT is a usage error naming it.
func TestDemoMetricsBadAddr(t *testing.T) {
	t.Parallel()
	r := runBin(t, nil, "demo", "--metrics", "nowhere")
	if r.code != exitUsage || !strings.Contains(r.stderr, `--metrics "nowhere": want HOST:PORT`) {
		t.Fatalf("demo --metrics nowhere: exit %d, stderr %q", r.code, r.stderr)
	}
	oneLineOf(t, "stderr", r.stderr)
}
