package redlock_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// BenchmarkObserverCost measures one TryLock+Unlock on five healthy local
// nodes with no observer, with an observer that does nothing, and with
// SlogObserver at Info (the Debug events are dropped by Enabled): the cost
// of the seam (README, Observability). The node timeout is 1s so that a
// loaded machine's pauses fail no call; it changes nothing on a healthy
// run. Run it with -count to compare the three on the same nodes.
func BenchmarkObserverCost(b *testing.B) {
	c := redistest.New(b, 5)
	for _, tc := range []struct {
		name string
		opts []redlock.Option
	}{
		{"none", nil},
		{"noop", []redlock.Option{redlock.WithObserver(redlock.ObserverFunc(func(redlock.Event) {}))}},
		{"slog-info", []redlock.Option{redlock.WithObserver(redlock.SlogObserver(slog.New(slog.NewTextHandler(io.Discard, nil))))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cl := newClient(b, c, append(tc.opts, redlock.WithNodeTimeout(time.Second))...)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				l, err := cl.TryLock(ctx, "bench-observer")
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
