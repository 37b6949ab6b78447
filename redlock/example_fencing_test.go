package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Storage is a resource protected by fencing tokens (ALGORITHM.md F5): it
// remembers the largest token it has seen and refuses any access with a
// smaller one, so a holder that paused past its deadline cannot overwrite
// the work of the holder after it.
type Storage struct {
	mu      sync.Mutex
	highest uint64
	value   string
}

var errStaleToken = errors.New("stale fencing token")

// Write stores v if token is at least the largest token seen.
func (s *Storage) Write(token uint64, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.highest {
		return fmt.Errorf("%w: %d < %d", errStaleToken, token, s.highest)
	}
	s.highest, s.value = token, v
	return nil
}

func Example_fencing() {
	ctx := context.Background()
	var pools []pool.Pool
	for _, addr := range exampleAddrs() {
		p := pool.New(addr)
		defer p.Close()
		pools = append(pools, p)
	}
	client, _ := redlock.New(pools, redlock.WithFencing(), redlock.WithTTL(200*time.Millisecond))
	defer client.Close()
	storage := &Storage{}

	a, _ := client.Lock(ctx, "storage")
	// A stalls (a GC pause, a stopped VM) past its deadline...
	time.Sleep(time.Until(a.Until()) + 150*time.Millisecond)

	// ...meanwhile B takes the lock and writes.
	b, _ := client.Lock(ctx, "storage")
	fmt.Println("B writes:", storage.Write(b.Token(), "from B"))

	// A wakes up and, unaware, writes with its older token: refused.
	err := storage.Write(a.Token(), "from A")
	fmt.Println("A's late write refused:", errors.Is(err, errStaleToken))
	fmt.Println("stored:", storage.value)
	b.Unlock(ctx)
	// Output:
	// B writes: <nil>
	// A's late write refused: true
	// stored: from B
}

// F4, F5: a holder paused past its deadline is refused by the resource
// after a newer holder wrote, and it could have known: its Done() had
// closed.
func TestPausedHolderIsRejectedByFencedResource(t *testing.T) {
	c := newClusterClient(t, redlock.WithFencing(), redlock.WithTTL(200*time.Millisecond), redlock.WithNodeTimeout(50*time.Millisecond))
	storage := &Storage{}
	a, err := c.Lock(t.Context(), "paused-holder")
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Write(a.Token(), "A early"); err != nil {
		t.Fatalf("A's write while holding = %v", err)
	}
	time.Sleep(time.Until(a.Until()) + 150*time.Millisecond) // A pauses past its deadline
	b, err := c.Lock(t.Context(), "paused-holder")
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Write(b.Token(), "B"); err != nil {
		t.Fatalf("B's write = %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("A's Done() is open after its deadline")
	}
	if err := storage.Write(a.Token(), "A late"); !errors.Is(err, errStaleToken) {
		t.Fatalf("A's late write = %v, want it refused as stale", err)
	}
	if storage.value != "B" {
		t.Fatalf("stored %q, want B's write", storage.value)
	}
	b.Unlock(t.Context())
}
