package chaos

import (
	"slices"
	"sync"
	"time"
)

// Hold is one successful acquisition as its holder saw it.
type Hold struct {
	Name   string
	Worker int
	Token  uint64
	Start  time.Time // Lock returned
	End    time.Time // min(Unlock called, Until())
}

// Call is one Lock call: how long it took and how long it was allowed.
type Call struct {
	At       time.Time
	Took     time.Duration
	Budget   time.Duration // the context's timeout; 0 when none
	Acquired bool
	Err      error // why it failed
	Client   int   // the contention workload's client instance; 0 elsewhere
	// Waited: the name was held by another worker when the call began, so
	// an acquisition is a handover (through the line of waiters).
	Waited bool
}

// Recorder collects holds and calls from many goroutines.
type Recorder struct {
	mu    sync.Mutex
	holds []Hold
	calls []Call
}

// AddHold records a hold.
func (r *Recorder) AddHold(h Hold) {
	r.mu.Lock()
	r.holds = append(r.holds, h)
	r.mu.Unlock()
}

// AddCall records a call.
func (r *Recorder) AddCall(c Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// Snapshot returns copies of what was recorded.
func (r *Recorder) Snapshot() ([]Hold, []Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.holds), slices.Clone(r.calls)
}

// Overlaps counts pairs of holds of one name whose intervals intersect:
// sorted by start, a hold that starts before the latest end so far.
func Overlaps(holds []Hold) int {
	n := 0
	for _, hs := range byName(holds) {
		var end time.Time
		for _, h := range hs {
			if h.Start.Before(end) {
				n++
			}
			if h.End.After(end) {
				end = h.End
			}
		}
	}
	return n
}

// TokenProblems counts, per name in acquisition order, tokens not greater
// than the one before: regressions (smaller) and repeats (equal). Only
// holds with a token (fencing on) count.
func TokenProblems(holds []Hold) (regressions, repeats int) {
	for _, hs := range byName(holds) {
		var last uint64
		for _, h := range hs {
			if h.Token == 0 {
				continue
			}
			switch {
			case h.Token < last:
				regressions++
			case h.Token == last:
				repeats++
			}
			last = h.Token
		}
	}
	return
}

// LateCalls counts calls that took longer than their budget plus slack.
func LateCalls(calls []Call, slack time.Duration) int {
	n := 0
	for _, c := range calls {
		if c.Budget > 0 && c.Took > c.Budget+slack {
			n++
		}
	}
	return n
}

// LongestDrought returns the longest time between successive acquisitions
// (of any name) within [from, to): the liveness measure.
func LongestDrought(holds []Hold, from, to time.Time) time.Duration {
	starts := make([]time.Time, 0, len(holds)+2)
	starts = append(starts, from)
	for _, h := range holds {
		if !h.Start.Before(from) && h.Start.Before(to) {
			starts = append(starts, h.Start)
		}
	}
	starts = append(starts, to)
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	for i := 1; i < len(starts); i++ {
		longest = max(longest, starts[i].Sub(starts[i-1]))
	}
	return longest
}

// byName groups holds by name, each group sorted by start.
func byName(holds []Hold) map[string][]Hold {
	m := map[string][]Hold{}
	for _, h := range holds {
		m[h.Name] = append(m[h.Name], h)
	}
	for _, hs := range m {
		slices.SortFunc(hs, func(a, b Hold) int { return a.Start.Compare(b.Start) })
	}
	return m
}

// GrantedDuring counts holds that started inside one of the windows, later
// than grace after it opened (an acquisition decided just before the fault
// may return just after it).
func GrantedDuring(holds []Hold, windows [][2]time.Time, grace time.Duration) int {
	n := 0
	for _, h := range holds {
		for _, w := range windows {
			if h.Start.After(w[0].Add(grace)) && h.Start.Before(w[1]) {
				n++
				break
			}
		}
	}
	return n
}
