package main

import (
	"context"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// BenchmarkLockUnlock keeps the per-operation figures (ns, allocations,
// bytes) of each library visible to go test -bench, on five local nodes.
func BenchmarkLockUnlock(b *testing.B) {
	c := redistest.New(b, 5)
	addrs := c.Addrs()
	for _, l := range []locker{newQuorumlock(addrs), newRedsync(addrs), newFloor(addrs)} {
		// Closed when the benchmark ends, not when a sub-benchmark's
		// function returns: the testing package may call it again (with
		// -count, or to grow b.N), which found the client closed.
		defer l.close()
		b.Run(l.name(), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				unlock, err := l.lock(ctx, "bench:go:"+l.name(), false)
				if err != nil {
					b.Fatal(err)
				}
				if err := unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
