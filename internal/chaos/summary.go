package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Summary is what a run did and what the checkers found.
type Summary struct {
	Tier             string          `json:"tier"`
	Seed             uint64          `json:"seed"`
	Seconds          float64         `json:"seconds"`
	Nodes            int             `json:"nodes"`
	Workers          int             `json:"workers"`
	Names            int             `json:"names"`
	InModel          bool            `json:"in_model"`
	Acquisitions     int             `json:"acquisitions"`
	FailedCalls      int             `json:"failed_calls"`
	Faults           map[string]int  `json:"faults"`
	Overlaps         int             `json:"overlaps"`
	StaleAccepted    int             `json:"stale_writes_accepted"`
	StaleRejected    int             `json:"stale_writes_rejected"`
	WritesAccepted   int             `json:"writes_accepted"`
	TokenRegressions int             `json:"token_regressions"`
	TokenRepeats     int             `json:"token_repeats"`
	LateCalls        int             `json:"late_calls"`
	LongestDroughtMs int64           `json:"longest_drought_ms"` // contention runs: while clients waited
	MajorityDownMs   int64           `json:"majority_down_ms"`
	GrantedNoQuorum  int             `json:"granted_while_majority_down"`
	LockP50Ms        float64         `json:"lock_p50_ms"`
	LockP99Ms        float64         `json:"lock_p99_ms"`
	FaultErrors      []string        `json:"fault_errors,omitempty"`
	Fairness         *Fairness       `json:"fairness,omitempty"`    // the contention workload's
	Election         *ElectionReport `json:"election,omitempty"`    // the election workload's
	Permits          int             `json:"permits,omitempty"`     // the semaphore workload's K
	MaxHolders       int             `json:"max_holders,omitempty"` // the most permits held at once
	Violations       []string        `json:"violations"`
}

// Limits are what an in-model run must stay within.
type Limits struct {
	CallSlack   time.Duration // a call may exceed its budget by this much
	MaxDrought  time.Duration // longest time without an acquisition
	MinAcquired int
}

// Summarize runs the checkers over a finished run.
func Summarize(tier string, seed uint64, from, to time.Time, nodes, workers, names int, inModel bool,
	rec *Recorder, res *Resource, faults map[string]int, faultErrs []error, majorityDown [][2]time.Time, lim Limits) Summary {
	return summarize(tier, seed, from, to, nodes, workers, names, inModel, rec, res, faults, faultErrs, majorityDown, lim, nil)
}

// summarize is Summarize; with waits, the drought is the longest time
// without an acquisition while someone waited (LongestWaitedDrought), not
// merely without one.
func summarize(tier string, seed uint64, from, to time.Time, nodes, workers, names int, inModel bool,
	rec *Recorder, res *Resource, faults map[string]int, faultErrs []error, majorityDown [][2]time.Time, lim Limits,
	waits [][2]time.Time) Summary {
	holds, calls := rec.Snapshot()
	s := Summary{
		Tier: tier, Seed: seed, Seconds: to.Sub(from).Seconds(), Nodes: nodes, Workers: workers, Names: names,
		InModel: inModel, Acquisitions: len(holds), Faults: faults, Violations: []string{},
	}
	var lat []time.Duration
	for _, c := range calls {
		if c.Acquired {
			lat = append(lat, c.Took)
		} else {
			s.FailedCalls++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		s.LockP50Ms, s.LockP99Ms = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	}
	s.Overlaps = Overlaps(holds)
	s.WritesAccepted, s.StaleRejected, s.StaleAccepted = res.Counts()
	s.TokenRegressions, s.TokenRepeats = TokenProblems(holds)
	s.LateCalls = LateCalls(calls, lim.CallSlack)
	if waits != nil {
		s.LongestDroughtMs = LongestWaitedDrought(holds, waits).Milliseconds()
	} else {
		s.LongestDroughtMs = LongestDrought(holds, from, to).Milliseconds()
	}
	for _, w := range majorityDown {
		s.MajorityDownMs += w[1].Sub(w[0]).Milliseconds()
	}
	s.GrantedNoQuorum = GrantedDuring(holds, majorityDown, lim.CallSlack)
	for _, e := range faultErrs {
		s.FaultErrors = append(s.FaultErrors, e.Error())
	}
	v := func(cond bool, format string, args ...any) {
		if cond {
			s.Violations = append(s.Violations, fmt.Sprintf(format, args...))
		}
	}
	v(s.Overlaps > 0, "%d overlapping holds", s.Overlaps)
	v(s.StaleAccepted > 0, "%d stale writes accepted", s.StaleAccepted)
	v(s.TokenRegressions+s.TokenRepeats > 0, "%d token regressions, %d repeats", s.TokenRegressions, s.TokenRepeats)
	v(s.GrantedNoQuorum > 0, "%d locks granted while a majority was down", s.GrantedNoQuorum)
	if inModel {
		v(s.LateCalls > 0, "%d calls outlived their context by more than %v", s.LateCalls, lim.CallSlack)
		waited := ""
		if waits != nil {
			waited = " while clients waited"
		}
		v(time.Duration(s.LongestDroughtMs)*time.Millisecond > lim.MaxDrought,
			"no acquisition for %dms%s (limit %v) with a majority healthy", s.LongestDroughtMs, waited, lim.MaxDrought)
		v(s.Acquisitions < lim.MinAcquired, "only %d acquisitions (want >= %d)", s.Acquisitions, lim.MinAcquired)
		v(len(s.FaultErrors) > 0, "fault injection errors: %s", strings.Join(s.FaultErrors, "; "))
	}
	return s
}

// FaultList returns the faults injected, in all and by kind
// ("kill 12, pause 20").
func (s Summary) FaultList() (total int, byKind string) {
	kinds := make([]string, 0, len(s.Faults))
	for k, n := range s.Faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(kinds)
	return total, strings.Join(kinds, ", ")
}

// Line is the one-line human summary.
func (s Summary) Line() string {
	total, kinds := s.FaultList()
	model := ""
	if !s.InModel {
		model = " (out of model)"
	}
	down := ""
	if s.MajorityDownMs > 0 {
		down = fmt.Sprintf(", majority down %dms with %d locks granted", s.MajorityDownMs, s.GrantedNoQuorum)
	}
	fair := ""
	if f := s.Fairness; f != nil {
		fair = fmt.Sprintf(", fairness: Jain %.3f over %d whole-run clients, least served %.2f of the mean, longest wait %dms (%dms unfrozen), longest drought with waiters %dms, longest stall after a waiter fault %dms, %d starved calls",
			f.Jain, f.WholeRun, f.MinShare, f.LongestWaitMs, f.LongestWaitRunningMs, s.LongestDroughtMs, f.LongestStallMs, f.Starved)
	}
	return fmt.Sprintf("chaos%s [%s]: %d acquisitions, %d faults (%s), %d overlaps, %d stale writes accepted (%d rejected), %d token regressions%s, lock p50 %.2fms p99 %.2fms%s, seed %d",
		model, s.Tier, s.Acquisitions, total, kinds, s.Overlaps, s.StaleAccepted, s.StaleRejected,
		s.TokenRegressions+s.TokenRepeats, down, s.LockP50Ms, s.LockP99Ms, fair, s.Seed)
}

// JSON is the machine-readable summary.
func (s Summary) JSON() string {
	b, _ := json.Marshal(s)
	return string(b)
}
