package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// peer is one separate client of a workload (contention, election): its own
// proxy in front of every node, each behind that node's gate and the peer's
// own (so that it can be frozen or cut off alone), its own pools and
// client, and the goroutine that runs it.
type peer struct {
	client  *redlock.Client
	pools   []pool.Pool
	proxies []*Proxy
	gate    *Gate // in front of all its proxies: a freeze cuts it
	cancel  context.CancelFunc
	done    chan struct{} // closed when its goroutine returned
	dead    atomic.Bool   // crashed: it acts on nothing any more
}

func newPeer() peer { return peer{gate: &Gate{}, done: make(chan struct{})} }

// connect makes the peer's proxies to addrs (behind gates[j] and its own
// gate), its pools and its client with opts. What it made before failing
// is closed by close.
func (p *peer) connect(addrs []string, gates []*Gate, opts ...redlock.Option) error {
	for j, a := range addrs {
		px, err := NewProxy(a, gates[j], p.gate)
		if err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		p.proxies = append(p.proxies, px)
		p.pools = append(p.pools, pool.New(px.Addr()))
	}
	cl, err := redlock.New(p.pools, opts...)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	p.client = cl
	return nil
}

// run runs fn in wg, with a context from parent that close cancels.
func (p *peer) run(parent context.Context, wg *sync.WaitGroup, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(parent)
	p.cancel = cancel
	wg.Go(func() {
		defer close(p.done)
		fn(ctx)
	})
}

// close stops the peer's goroutine, then closes its client, its pools and
// its proxies: a crashed peer's too, only now (its process was gone;
// nothing of it was cleaned up when it crashed).
func (p *peer) close() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	if p.client != nil {
		p.client.Close()
	}
	for _, pl := range p.pools {
		pl.Close()
	}
	for _, px := range p.proxies {
		px.Close()
	}
}
