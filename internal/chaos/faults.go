package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// Node is a Redis node a fault schedule can hurt. The redis-server processes
// of internal/redistest and the containers of internal/redisdocker both
// satisfy it.
type Node interface {
	Addr() string
	Kill() error
	Start() error
	Pause() error
	Resume() error
}

// Partitionable is a node that can be cut off from the network itself
// (a container: docker network disconnect).
type Partitionable interface {
	Disconnect() error
	Reconnect() error
}

// Fault kinds.
const (
	Kill      = "kill"      // kill, restart after more than the TTL (N2: delayed restart)
	Restart   = "restart"   // kill and restart at once: in the model only with appendfsync always
	Pause     = "pause"     // SIGSTOP / docker pause, then resume
	Partition = "partition" // cut off from the network, then reconnect
	Latency   = "latency"   // added delay on one node's traffic
)

// Target is one node and, optionally, the link its clients go through: a
// proxy, or the gate of every proxy in front of the node (latency;
// partition when the node is not Partitionable).
type Target struct {
	Node Node
	Link Link
}

// Schedule injects faults at random, from a seed, never on more than
// MaxFaulty nodes at once.
type Schedule struct {
	Targets   []Target
	Kinds     []string
	MaxFaulty int           // N-Q keeps the run in the model
	TTL       time.Duration // a delayed restart waits longer than this
	Every     time.Duration // mean pause between two new faults
	Seed      uint64
	Log       func(format string, args ...any) // optional

	mu       sync.Mutex
	faulty   map[int]string // node index -> current fault
	counts   map[string]int
	errs     []error
	downFrom time.Time // when a majority became faulty; zero while it is not
	windows  [][2]time.Time
}

type heal struct {
	at   time.Time
	node int
	do   func() error
}

// Run injects faults until ctx ends, then heals every node and returns the
// count of faults by kind.
func (s *Schedule) Run(ctx context.Context) map[string]int {
	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	s.mu.Lock()
	s.faulty, s.counts = map[int]string{}, map[string]int{}
	s.mu.Unlock()
	var pending []heal
	next := time.Now().Add(s.jitter(rng))
	for {
		sort.Slice(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
		wake := next
		if len(pending) > 0 && pending[0].at.Before(wake) {
			wake = pending[0].at
		}
		select {
		case <-ctx.Done():
			for _, h := range pending {
				s.healNode(h)
			}
			return s.Counts()
		case <-time.After(time.Until(wake)):
		}
		now := time.Now()
		for len(pending) > 0 && !pending[0].at.After(now) {
			s.healNode(pending[0])
			pending = pending[1:]
		}
		if now.Before(next) {
			continue
		}
		next = now.Add(s.jitter(rng))
		if h, ok := s.inject(rng); ok {
			pending = append(pending, h)
		}
	}
}

func (s *Schedule) jitter(rng *rand.Rand) time.Duration {
	return s.Every/2 + time.Duration(rng.Int64N(int64(s.Every)+1))
}

// inject starts one fault on a healthy node, if the budget allows. The node
// is marked faulty before the fault is applied, and the lock is not held
// while it is (a container restart takes seconds).
func (s *Schedule) inject(rng *rand.Rand) (heal, bool) {
	s.mu.Lock()
	if len(s.faulty) >= s.MaxFaulty || len(s.Kinds) == 0 {
		s.mu.Unlock()
		return heal{}, false
	}
	var healthy []int
	for i := range s.Targets {
		if _, bad := s.faulty[i]; !bad {
			healthy = append(healthy, i)
		}
	}
	if len(healthy) == 0 {
		s.mu.Unlock()
		return heal{}, false
	}
	i := healthy[rng.IntN(len(healthy))]
	kind := s.Kinds[rng.IntN(len(s.Kinds))]
	s.faulty[i] = kind
	if 2*len(s.faulty) > len(s.Targets) && s.downFrom.IsZero() {
		s.downFrom = time.Now()
	}
	s.mu.Unlock()

	h, err, ok := s.apply(rng, s.Targets[i], kind)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || err != nil {
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s %s: %w", kind, s.Targets[i].Node.Addr(), err))
		}
		delete(s.faulty, i)
		return heal{}, false
	}
	s.counts[kind]++
	h.node = i
	if s.Log != nil {
		s.Log("fault: %s %s", kind, s.Targets[i].Node.Addr())
	}
	return h, true
}

// apply performs one fault and says how to heal it; ok is false when the
// target cannot take that kind of fault.
func (s *Schedule) apply(rng *rand.Rand, t Target, kind string) (h heal, err error, ok bool) {
	span := func(lo, hi time.Duration) time.Time {
		return time.Now().Add(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
	}
	switch kind {
	case Kill:
		err = t.Node.Kill()
		h = heal{at: span(s.TTL+100*time.Millisecond, 2*s.TTL+time.Second), do: t.Node.Start}
	case Restart:
		if err = t.Node.Kill(); err == nil {
			err = t.Node.Start()
		}
		h = heal{at: time.Now(), do: func() error { return nil }}
	case Pause:
		err = t.Node.Pause()
		h = heal{at: span(50*time.Millisecond, 3*s.TTL), do: t.Node.Resume}
	case Partition:
		if p, isP := t.Node.(Partitionable); isP {
			err = p.Disconnect()
			h = heal{at: span(50*time.Millisecond, 3*s.TTL), do: p.Reconnect}
		} else if t.Link != nil {
			t.Link.Cut()
			h = heal{at: span(50*time.Millisecond, 3*s.TTL), do: func() error { t.Link.Mend(); return nil }}
		} else {
			return heal{}, nil, false
		}
	case Latency:
		if t.Link == nil {
			return heal{}, nil, false
		}
		t.Link.SetDelay(time.Duration(1+rng.IntN(60)) * time.Millisecond)
		h = heal{at: span(100*time.Millisecond, 3*s.TTL), do: func() error { t.Link.SetDelay(0); return nil }}
	default:
		return heal{}, fmt.Errorf("unknown fault kind %q", kind), true
	}
	return h, err, true
}

func (s *Schedule) healNode(h heal) {
	err := h.do()
	if s.Log != nil {
		s.Log("heal: %s (%v)", s.Targets[h.node].Node.Addr(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("heal %s: %w", s.Targets[h.node].Node.Addr(), err))
	}
	delete(s.faulty, h.node)
	if 2*len(s.faulty) <= len(s.Targets) && !s.downFrom.IsZero() {
		s.windows = append(s.windows, [2]time.Time{s.downFrom, time.Now()})
		s.downFrom = time.Time{}
	}
}

// MajorityDown returns the windows during which a majority of the nodes
// was faulty: out of the model, when no lock may be granted.
func (s *Schedule) MajorityDown() [][2]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][2]time.Time(nil), s.windows...)
}

// Counts returns the faults injected so far, by kind.
func (s *Schedule) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Faulty returns the current fault of each faulty node, by kind: how many
// nodes are down, frozen, cut off or slow right now.
func (s *Schedule) Faulty() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, k := range s.faulty {
		out[k]++
	}
	return out
}

// Errors returns the errors met injecting or healing faults.
func (s *Schedule) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}
