package chaos

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"
)

// Fairness is how evenly the contention workload served its clients, and
// how long they waited. The shares are over the clients that lived the
// whole run (the mortal ones crash and are replaced: a client that lived a
// second says little), each normalised per second it was not frozen (a
// frozen client asks for nothing).
type Fairness struct {
	Clients   int `json:"clients"`           // separate clients at any time
	Mortal    int `json:"mortal_clients"`    // of them, those that crash and are replaced
	Instances int `json:"client_instances"`  // clients started, replacements included
	WholeRun  int `json:"clients_whole_run"` // those alive from start to end: the shares are theirs
	// Acquired holds, per whole-run client, its acquisitions; PerSecond
	// the same per second it was not frozen.
	Acquired  []int     `json:"acquired"`
	PerSecond []float64 `json:"acquired_per_second"`
	// Jain is Jain's index of PerSecond, (sum x)^2 / (n sum x^2): 1 when
	// every client got the same, 1/n when one got everything.
	Jain    float64 `json:"jain"`
	MinJain float64 `json:"min_jain"` // what an in-model run must reach; negative: reported only
	// MinShare is the least served client's PerSecond over the mean.
	MinShare float64 `json:"min_share"`
	// LongestWaitMs is the longest Lock call that succeeded, any client;
	// LongestWaitRunningMs the same among the calls no freeze of their
	// client touched.
	LongestWaitMs        int64 `json:"longest_wait_ms"`
	LongestWaitRunningMs int64 `json:"longest_wait_running_ms"`
	// Starved counts Lock calls that waited their whole budget while their
	// client ran (no freeze during the call).
	Starved int `json:"starved_calls"`
	// AtHead counts, by kind, the waiter faults that hit the client that
	// had waited longest: the head of the line, as a rule.
	AtHead map[string]int `json:"waiter_faults_at_head"`
	// LongestStallMs is the longest time from a waiter fault to the next
	// acquisition by another client: what a stopped waiter cost the line
	// (ALGORITHM.md L4: about 9 node timeouts, plus the hold in progress).
	LongestStallMs int64 `json:"longest_stall_after_waiter_fault_ms"`
}

// stallAfter returns the longest time from a waiter fault to the next
// acquisition by another client (to the end of the run if none came).
func stallAfter(events []waiterEvent, holds []Hold, to time.Time) time.Duration {
	var longest time.Duration
	for _, e := range events {
		next := to
		for _, h := range holds {
			if h.Worker != e.client && h.Start.After(e.at) && h.Start.Before(next) {
				next = h.Start
			}
		}
		longest = max(longest, next.Sub(e.at))
	}
	return longest
}

// Jain returns Jain's fairness index of xs, (sum x)^2 / (n sum x^2), or 0
// when xs is empty or all zero.
func Jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}

// MinShare returns the smallest of xs over their mean, or 0.
func MinShare(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	if sum == 0 {
		return 0
	}
	return slices.Min(xs) / (sum / float64(len(xs)))
}

// LongestWaitedDrought returns the longest time during which some client
// waited (inside one of the intervals waits, merged) and no acquisition
// started: the liveness measure of a line of waiters.
func LongestWaitedDrought(holds []Hold, waits [][2]time.Time) time.Duration {
	ws := slices.Clone(waits)
	slices.SortFunc(ws, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var merged [][2]time.Time
	for _, w := range ws {
		if !w[0].Before(w[1]) {
			continue
		}
		if n := len(merged); n > 0 && !w[0].After(merged[n-1][1]) {
			if w[1].After(merged[n-1][1]) {
				merged[n-1][1] = w[1]
			}
			continue
		}
		merged = append(merged, w)
	}
	starts := make([]time.Time, 0, len(holds))
	for _, h := range holds {
		starts = append(starts, h.Start)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	for _, w := range merged {
		last := w[0]
		i, _ := slices.BinarySearchFunc(starts, w[0], func(a, b time.Time) int { return a.Compare(b) })
		for ; i < len(starts) && starts[i].Before(w[1]); i++ {
			longest = max(longest, starts[i].Sub(last))
			last = starts[i]
		}
		longest = max(longest, w[1].Sub(last))
	}
	return longest
}

// fairness measures a finished contention run.
func fairness(instances []*instance, holds []Hold, calls []Call, from, to time.Time) Fairness {
	f := Fairness{Instances: len(instances), Acquired: []int{}, PerSecond: []float64{}}
	count := map[int]int{}
	for _, h := range holds {
		count[h.Worker]++
	}
	frozen := map[int][][2]time.Time{}
	var rates []float64
	for _, in := range instances {
		in.mu.Lock()
		died, fr := in.died, slices.Clone(in.frozen)
		in.mu.Unlock()
		frozen[in.id] = fr
		if !in.initial || !died.IsZero() {
			continue
		}
		avail := to.Sub(from)
		for _, w := range fr {
			lo, hi := w[0], w[1]
			if lo.Before(from) {
				lo = from
			}
			if hi.IsZero() || hi.After(to) {
				hi = to
			}
			if lo.Before(hi) {
				avail -= hi.Sub(lo)
			}
		}
		rate := float64(count[in.id]) / avail.Seconds()
		rates = append(rates, rate)
		f.Acquired = append(f.Acquired, count[in.id])
		f.PerSecond = append(f.PerSecond, math.Round(rate*100)/100)
	}
	f.WholeRun = len(rates)
	f.Jain, f.MinShare = Jain(rates), MinShare(rates)
	for _, c := range calls {
		running := !overlapsAny([2]time.Time{c.At, c.At.Add(c.Took)}, frozen[c.Client])
		switch {
		case c.Acquired:
			f.LongestWaitMs = max(f.LongestWaitMs, c.Took.Milliseconds())
			if running {
				f.LongestWaitRunningMs = max(f.LongestWaitRunningMs, c.Took.Milliseconds())
			}
		case running && c.Budget > 0 && errors.Is(c.Err, context.DeadlineExceeded):
			f.Starved++
		}
	}
	return f
}

// overlapsAny reports whether iv intersects one of the windows (a window
// still open, with a zero end, counts as open-ended).
func overlapsAny(iv [2]time.Time, windows [][2]time.Time) bool {
	for _, w := range windows {
		if w[0].Before(iv[1]) && (w[1].IsZero() || iv[0].Before(w[1])) {
			return true
		}
	}
	return false
}
