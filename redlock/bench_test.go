package redlock_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// BenchmarkLockUnlock measures one TryLock+Unlock on N healthy local nodes,
// and on five with one frozen (SIGSTOP), with the default options, with and
// without fencing. Besides
// ns/op it reports the p50 and p99 of the pair in microseconds.
func BenchmarkLockUnlock(b *testing.B) {
	for _, tc := range []struct {
		n, frozen int
		fencing   bool
	}{{1, 0, false}, {3, 0, false}, {5, 0, false}, {5, 1, false}, {5, 0, true}, {5, 1, true}} {
		name := fmt.Sprintf("N=%d", tc.n)
		if tc.frozen > 0 {
			name += fmt.Sprintf("/frozen=%d", tc.frozen)
		}
		var opts []redlock.Option
		if tc.fencing {
			name += "/fencing"
			opts = append(opts, redlock.WithFencing())
		}
		b.Run(name, func(b *testing.B) {
			c := redistest.New(b, tc.n)
			for _, node := range c.Nodes()[:tc.frozen] {
				if err := node.Pause(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { node.Resume() })
			}
			cl := newClient(b, c, opts...)
			ctx := b.Context()
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				l, err := cl.TryLock(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Unlock(ctx); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
	}
}
