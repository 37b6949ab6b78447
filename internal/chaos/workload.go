package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// Workload is several workers contending for a few lock names and writing
// to a fenced Resource while they hold a lock.
type Workload struct {
	Clients     []*redlock.Client // worker w uses Clients[w%len(Clients)]
	Names       []string
	Workers     int
	Resource    *Resource
	Recorder    *Recorder
	TTL         time.Duration // the clients' TTL: some holders overstay it
	NodeTimeout time.Duration // the clients' node timeout: some Extends are cut off within it
	LockTimeout time.Duration // the context budget of one Lock call
	Seed        uint64

	waiting atomic.Int64 // workers inside Lock now
	held    sync.Map     // name -> *atomic.Int64: workers holding it (as they see it)
}

// Waiting returns how many workers are inside Lock now: the line, as this
// workload sees it.
func (w *Workload) Waiting() int { return int(w.waiting.Load()) }

func (w *Workload) holders(name string) *atomic.Int64 {
	v, _ := w.held.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// Run runs the workers until ctx ends.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.worker(ctx, i)
		}()
	}
	wg.Wait()
}

func (w *Workload) worker(ctx context.Context, id int) {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(id)))
	client := w.Clients[id%len(w.Clients)]
	for ctx.Err() == nil {
		name := w.Names[rng.IntN(len(w.Names))]
		// One hold in eight is a long job kept alive by auto-extension.
		var opts []redlock.Option
		long := rng.IntN(8) == 0
		if long {
			opts = append(opts, redlock.WithAutoExtend())
		}
		lctx, cancel := context.WithTimeout(ctx, w.LockTimeout)
		at := time.Now()
		waited := w.holders(name).Load() > 0
		w.waiting.Add(1)
		l, err := client.Lock(lctx, name, opts...)
		w.waiting.Add(-1)
		took := time.Since(at)
		cancel()
		budget := w.LockTimeout
		if ctx.Err() != nil { // the run ended the call, not its own budget
			budget = 0
		}
		w.Recorder.AddCall(Call{At: at, Took: took, Budget: budget, Acquired: err == nil, Err: err, Waited: waited})
		if err != nil {
			continue
		}
		w.hold(ctx, rng, id, l, long)
	}
}

// hold works under the lock: writes to the resource, only before Until()
// and while Done() is open (the holder's discipline), for a random time. A
// long (auto-extended) hold lasts one to two TTLs; the others up to a tenth
// of the TTL, except one in twenty that overstays the TTL and calls Unlock
// late, as a slow holder would, and one in four that changes its TTL.
func (w *Workload) hold(ctx context.Context, rng *rand.Rand, id int, l *redlock.Lock, long bool) {
	start := time.Now()
	holding := w.holders(l.Name())
	holding.Add(1)
	defer holding.Add(-1)
	w.Resource.Issued(l.Name(), l.Token())
	length := time.Duration(rng.Int64N(int64(w.TTL / 10)))
	switch {
	case long:
		length = w.TTL + time.Duration(rng.Int64N(int64(w.TTL)))
	case rng.IntN(20) == 0:
		length = w.TTL + w.TTL/2
	}
	if rng.IntN(4) == 0 {
		w.changeTTL(ctx, rng, l)
		length = max(length, w.TTL+w.TTL/2) // then work as long as Until() allows
	}
	stop := start.Add(length)
	for time.Now().Before(stop) && ctx.Err() == nil {
		if l.Err() != nil || !time.Now().Before(l.Until()) {
			break
		}
		w.Resource.Write(l.Name(), l.Token())
		time.Sleep(2 * time.Millisecond)
	}
	if d := time.Until(stop); d > 0 && ctx.Err() == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	end := time.Now()
	if u := l.Until(); u.Before(end) {
		end = u
	}
	l.Unlock(context.WithoutCancel(ctx))
	w.Recorder.AddHold(Hold{Name: l.Name(), Worker: id, Token: l.Token(), Start: start, End: end})
}

// changeTTL is a holder whose job turned out shorter or longer than
// planned: it asks for a TTL from a quarter of the lock's to twice it,
// under a context that may end before the nodes answer (already ended, cut
// off within a node timeout or two, or not at all). Whatever Extend
// returns, the holder then trusts Until(): no outcome may leave Until()
// past the keys (ALGORITHM.md E4, E6), or the checkers see two holders.
func (w *Workload) changeTTL(ctx context.Context, rng *rand.Rand, l *redlock.Lock) {
	ttl := w.TTL/4 + time.Duration(rng.Int64N(int64(w.TTL*7/4)))
	ttl = ttl.Truncate(time.Millisecond)
	var cut time.Duration
	switch rng.IntN(3) {
	case 0: // already ended
	case 1:
		cut = time.Duration(rng.Int64N(int64(2*w.NodeTimeout))) + 1
	default:
		cut = w.TTL
	}
	ectx, cancel := context.WithTimeout(ctx, cut)
	defer cancel()
	l.Extend(ectx, ttl)
}
