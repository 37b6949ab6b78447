package redlock_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records parses the JSON lines logged so far.
func (b *syncBuffer) records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitRecord polls until a record matches and returns it.
func (b *syncBuffer) waitRecord(t testing.TB, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range b.records(t) {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record within 10s; log:\n%s", what, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msgLevel(msg, level string) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["msg"] == msg && r["level"] == level }
}

// O2: SlogObserver logs attempts, waits, extensions and releases at Debug,
// node failures, lost locks and replaced connections at Warn, with the
// events' fields as attributes, and no line holds a lock's value or the
// nodes' password.
func TestSlogObserverLogsNoSecrets(t *testing.T) {
	const password = "pw-7c1f0e5d-never-logged"
	c := redistest.New(t, 5, redistest.WithPassword(password))
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pools := newPools(t, c.Addrs(), pool.WithPassword(password))
	cl := newClientOn(t, pools, redlock.WithObserver(redlock.SlogObserver(logger)), redlock.WithNodeTimeout(100*time.Millisecond))
	ctx := t.Context()
	var values []string // every lock value written, read back from the nodes

	l, err := cl.Lock(ctx, "slog")
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, "slog", 5)
	values = append(values, keyOn(t, c.Nodes()[4], "slog"))
	if err := l.Extend(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	a := buf.waitRecord(t, "attempt", msgLevel("redlock: attempt", "DEBUG"))
	if a["name"] != "slog" || a["outcome"] != "ok" || a["granted"] == nil || a["latency"] == nil || a["in_lock"] != true {
		t.Fatalf("attempt record %v", a)
	}
	for _, msg := range []string{"redlock: lock", "redlock: extend", "redlock: release"} {
		r := buf.waitRecord(t, msg, msgLevel(msg, "DEBUG"))
		if r["name"] != "slog" || r["outcome"] != "ok" {
			t.Fatalf("%s record %v", msg, r)
		}
	}

	// A frozen node: a node failure at Warn.
	frozen := c.Nodes()[0]
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	l, err = cl.TryLock(ctx, "slog-frozen")
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, "slog-frozen", 4)
	values = append(values, keyOn(t, c.Nodes()[4], "slog-frozen"))
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	f := buf.waitRecord(t, "node failure", func(r map[string]any) bool {
		return r["msg"] == "redlock: node_failure" && r["level"] == "WARN" && r["node"] == frozen.Addr()
	})
	if f["kind"] != "timeout" || !strings.Contains(f["err"].(string), frozen.Addr()) {
		t.Fatalf("node failure record %v", f)
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}

	// A lock that runs out: lost, at Warn.
	if _, err := cl.TryLock(ctx, "slog-lost", redlock.WithTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	settled(t, c, "slog-lost", 5)
	values = append(values, keyOn(t, c.Nodes()[4], "slog-lost"))
	lost := buf.waitRecord(t, "lost", msgLevel("redlock: lost", "WARN"))
	if lost["name"] != "slog-lost" || lost["cause"] != "expired" {
		t.Fatalf("lost record %v", lost)
	}

	log := buf.String()
	for _, v := range values {
		if v == "" {
			t.Fatal("a lock's value was not found on the node")
		}
		if strings.Contains(log, v) {
			t.Fatalf("the log holds a lock's value %q:\n%s", v, log)
		}
	}
	if strings.Contains(log, password) {
		t.Fatalf("the log holds the password:\n%s", log)
	}
}
