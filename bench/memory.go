package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

type memResult struct {
	locks            int
	bytesPerLock     float64
	goroutines       int
	extended         int64   // requests written while the locks were held
	requestsPerWrite float64 // how the extensions were batched per node
	lost             int
}

// memory holds n locks with auto-extension (TTL 3s: an extension about
// every second) for hold, and measures the heap and stacks they take, and
// how the extensions were written: requests per flush.
func memory(addrs []string, n int, hold time.Duration) (memResult, error) {
	var pools []pool.Pool
	for _, a := range addrs {
		pools = append(pools, pool.New(a))
	}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	c, err := redlock.New(pools, redlock.WithTTL(3*time.Second), redlock.WithNodeTimeout(time.Second), redlock.WithAutoExtend())
	if err != nil {
		return memResult{}, err
	}
	defer c.Close()
	base := heapAndStacks()
	g0 := runtime.NumGoroutine()
	locks := make([]*redlock.Lock, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				l, err := c.TryLock(context.Background(), fmt.Sprintf("bench:mem:%d", i))
				if err != nil {
					errs <- err
					return
				}
				locks[i] = l
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return memResult{}, err
	}
	held := heapAndStacks()
	r := memResult{locks: n, bytesPerLock: float64(held-base) / float64(n), goroutines: runtime.NumGoroutine() - g0}
	f0, q0 := pipe.Stats()
	time.Sleep(hold)
	f1, q1 := pipe.Stats()
	r.extended = q1 - q0
	r.requestsPerWrite = float64(q1-q0) / float64(max(f1-f0, 1))
	for _, l := range locks {
		if l.Err() != nil {
			r.lost++
		}
		l.Unlock(context.Background())
	}
	return r, nil
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}
