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
		b.Run(l.name(), func(b *testing.B) {
			defer l.close()
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
