package redlock_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// leaderships tallies the leaderships of candidates campaigning at once,
// for V1 and V2: who leads now, the last term, how many there were, and
// every breach seen (kept, not failed at once: the breaches are seen in
// the candidates' goroutines).
type leaderships struct {
	mu      sync.Mutex
	current int // the candidate leading now, -1 for none
	last    uint64
	count   int
	errs    []string
}

func newLeaderships() *leaderships { return &leaderships{current: -1} }

// lead records candidate i taking leadership l: a breach if another
// candidate still leads (V1) or if l's term is not greater than the
// previous one's (V2). The caller holds mu.
func (s *leaderships) lead(i int, l *redlock.Lock) {
	if s.current >= 0 {
		s.errs = append(s.errs, fmt.Sprintf("candidate %d leads while %d does", i, s.current))
	}
	if l.Token() <= s.last {
		s.errs = append(s.errs, fmt.Sprintf("term %d after term %d", l.Token(), s.last))
	}
	s.current, s.last = i, l.Token()
	s.count++
}

// check fails the test on any breach, and if fewer than want leaderships
// came in the time that during names.
func (s *leaderships) check(t *testing.T, want int, during string) {
	t.Helper()
	if len(s.errs) > 0 {
		t.Fatal(strings.Join(s.errs, "\n"))
	}
	if s.count < want {
		t.Fatalf("%d leaderships in %s, want %d", s.count, during, want)
	}
}

// campaignOverAndOver has candidates, each on a client of its own (as
// separate processes would be), campaign for name over and over until ctx
// ends; for each leadership, led runs before the candidate resigns it.
// It returns once every candidate stopped.
func campaignOverAndOver(ctx context.Context, t *testing.T, c *redistest.Cluster, name string, candidates int, led func(i int, l *redlock.Lock)) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range candidates {
		_, e := candidate(t, c, name)
		wg.Go(func() {
			for ctx.Err() == nil {
				l, err := e.Campaign(ctx, fmt.Sprint("candidate-", i))
				if err != nil {
					return
				}
				led(i, l)
				l.Unlock(context.Background())
			}
		})
	}
	wg.Wait()
}
