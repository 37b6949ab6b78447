package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// Candidate fault kinds of the election workload: faults of the clients
// campaigning, the leader most often (ALGORITHM.md V1, V7).
const (
	// CandidateCrash: the client vanishes: its connections are cut, it
	// never sends anything again (no resignation), and a fresh client
	// takes its place later, as a restarted instance would.
	CandidateCrash = "candidate-crash"
	// CandidateFreeze: the client's traffic stops, both ways, then
	// resumes: a leader loses its leadership when its extensions fail.
	CandidateFreeze = "candidate-freeze"
)

// ElectionLoad is the election workload (ALGORITHM.md V1-V7): Candidates
// separate clients campaign for one election over and over, each leading
// for a short random time and resigning; Observers clients each follow it
// with Observe; Readers clients ask Leader all the time, each read on a
// fresh Election (so that nothing but the quorum stands between the nodes
// and the answer). Node faults come from the schedule, candidate faults
// (crashes, freezes; the leader is the victim half the time) from
// CandidateKinds.
type ElectionLoad struct {
	Candidates     int           // default 4
	Observers      int           // default 2
	Readers        int           // default 2
	CandidateKinds []string      // CandidateCrash, CandidateFreeze
	CandidateEvery time.Duration // mean pause between two candidate faults; default 1s
}

// ElectionReport is what the election checkers found, besides the holds'.
type ElectionReport struct {
	Leaderships  int   `json:"leaderships"`
	Reads        int   `json:"leader_reads"`
	ReadsLeader  int   `json:"leader_reads_with_a_leader"`
	StaleReads   int   `json:"stale_leader_reads"`    // an older term than a leadership begun before the read
	WrongValue   int   `json:"wrong_value_reports"`   // a term reported with another candidate's value
	Observed     []int `json:"observed_per_observer"` // leaders each observer received
	OutOfOrder   int   `json:"observed_out_of_order"`
	UnknownTerms int   `json:"unknown_terms"` // reported terms of no recorded leadership (a campaign that resigned at once)
}

// member is one client of the election workload, with its own proxies.
type member struct {
	id, slot int
	peer     // its client, behind its own proxies; its campaign
	frozen   atomic.Bool
	leading  atomic.Bool
}

// readAnswer is one Leader call of a reader.
type readAnswer struct {
	at     time.Time // before the request was sent
	leader redlock.Leader
}

// elector is one election run in progress.
type elector struct {
	cfg   Config
	el    ElectionLoad
	name  string
	addrs []string
	gates []*Gate
	rec   *Recorder
	res   *Resource

	runCtx context.Context
	wg     sync.WaitGroup

	mu       sync.Mutex
	members  []*member // every one started: index = id
	slots    []*member // the live candidate of each slot; nil between a crash and its replacement
	counts   map[string]int
	errs     []error
	reads    []readAnswer
	observed [][]redlock.Leader
}

// RunElection runs the election workload under the node fault schedule of
// cfg and the candidate faults of el for cfg.Duration (or until ctx ends),
// heals everything, and returns what the checkers found: the holds'
// checkers (leaderships never overlap, terms strictly increase in order of
// leadership, the fenced resource takes no stale write, liveness), and the
// election's: no Leader answer older than a leadership that began before
// the read (V4), a term always reported with its leader's value, and each
// observer's terms strictly increasing (V6).
func RunElection(ctx context.Context, cfg Config, el ElectionLoad) (Summary, error) {
	if cfg.Limits.MaxDrought == 0 {
		cfg.Limits.MaxDrought = 12 * max(cfg.TTL, 300*time.Millisecond)
	}
	cfg.defaults()
	if el.Candidates == 0 {
		el.Candidates = 4
	}
	if el.Observers == 0 {
		el.Observers = 2
	}
	if el.Readers == 0 {
		el.Readers = 2
	}
	if el.CandidateEvery == 0 {
		el.CandidateEvery = time.Second
	}
	e := &elector{
		cfg: cfg, el: el, name: fmt.Sprintf("chaos-%d", cfg.Seed%100000),
		rec: &Recorder{}, res: NewResource(), counts: map[string]int{},
		slots: make([]*member, el.Candidates), observed: make([][]redlock.Leader, el.Observers),
	}
	targets := make([]Target, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		e.addrs = append(e.addrs, n.Addr())
		e.gates = append(e.gates, &Gate{})
		targets[i] = Target{Node: n, Link: e.gates[i]}
	}
	defer e.closeAll()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	e.runCtx = runCtx
	from := time.Now()
	for slot := range el.Candidates {
		if err := e.startCandidate(slot); err != nil {
			return Summary{}, err
		}
	}
	for i := range el.Observers {
		m, err := e.newMember(-1)
		if err != nil {
			return Summary{}, err
		}
		e.wg.Go(func() { e.observe(m, i) })
	}
	for range el.Readers {
		m, err := e.newMember(-1)
		if err != nil {
			return Summary{}, err
		}
		e.wg.Go(func() { e.read(m) })
	}
	s := &Schedule{Targets: targets, Kinds: cfg.Kinds, MaxFaulty: cfg.MaxFaulty, TTL: cfg.TTL, Every: cfg.Every, Seed: cfg.Seed}
	var faults map[string]int
	var bg sync.WaitGroup
	bg.Go(func() { faults = s.Run(runCtx) })
	bg.Go(func() { e.candidateFaults(runCtx) })
	bg.Wait()
	e.wg.Wait()
	to := time.Now()

	e.mu.Lock()
	for k, n := range e.counts {
		faults[k] += n
	}
	faultErrs := append(s.Errors(), e.errs...)
	e.mu.Unlock()
	sum := summarize(cfg.Tier, cfg.Seed, from, to, len(cfg.Nodes), el.Candidates, 1, cfg.InModel,
		e.rec, e.res, faults, faultErrs, s.MajorityDown(), cfg.Limits, nil)
	r := e.check()
	sum.Election = &r
	v := func(cond bool, format string, args ...any) {
		if cond {
			sum.Violations = append(sum.Violations, fmt.Sprintf(format, args...))
		}
	}
	v(r.StaleReads > 0, "%d Leader answers older than a leadership begun before the read (V4)", r.StaleReads)
	v(r.WrongValue > 0, "%d terms reported with another candidate's value (V3)", r.WrongValue)
	v(r.OutOfOrder > 0, "%d observed leaders out of term order (V6)", r.OutOfOrder)
	if cfg.InModel {
		v(r.ReadsLeader == 0, "no Leader read found a leader in %d reads", r.Reads)
		for i, n := range r.Observed {
			v(n == 0, "observer %d received no leader", i)
		}
	}
	return sum, nil
}

// check runs the election's checkers over the recorded leaderships, reads
// and observations.
func (e *elector) check() ElectionReport {
	holds, _ := e.rec.Snapshot()
	e.mu.Lock()
	reads, observed := slices.Clone(e.reads), slices.Clone(e.observed)
	e.mu.Unlock()
	slices.SortFunc(holds, func(a, b Hold) int { return a.Start.Compare(b.Start) })
	worker := map[uint64]int{}
	for _, h := range holds {
		worker[h.Token] = h.Worker
	}
	r := ElectionReport{Leaderships: len(holds), Reads: len(reads)}
	known := func(l redlock.Leader) {
		w, ok := worker[l.Token]
		switch {
		case !ok:
			r.UnknownTerms++
		case l.Value != candidateValue(w):
			r.WrongValue++
		}
	}
	for _, rd := range reads {
		if rd.leader.Token == 0 {
			continue
		}
		r.ReadsLeader++
		known(rd.leader)
		// V4: once a leadership of term t' has begun (Campaign returned), a
		// quorum never again holds an older one: no read sent later may
		// report an older term.
		for _, h := range holds {
			if !h.Start.Before(rd.at) {
				break
			}
			if h.Token > rd.leader.Token {
				r.StaleReads++
				break
			}
		}
	}
	for _, seq := range observed {
		var last uint64
		n := 0
		for _, l := range seq {
			if l.Token == 0 {
				continue
			}
			n++
			known(l)
			if l.Token <= last {
				r.OutOfOrder++
			}
			last = l.Token
		}
		r.Observed = append(r.Observed, n)
	}
	return r
}

func candidateValue(id int) string { return "candidate-" + strconv.Itoa(id) }

// newMember makes a client with its own gate and a proxy per node (behind
// the node's gate): a separate service instance.
func (e *elector) newMember(slot int) (*member, error) {
	m := &member{slot: slot, peer: newPeer()}
	e.mu.Lock()
	m.id = len(e.members)
	e.members = append(e.members, m) // closeAll closes what was made, even on failure
	e.mu.Unlock()
	if err := m.connect(e.addrs, e.gates, redlock.WithTTL(e.cfg.TTL), redlock.WithNodeTimeout(e.cfg.NodeTimeout)); err != nil {
		return nil, err
	}
	return m, nil
}

// startCandidate starts a fresh candidate in slot.
func (e *elector) startCandidate(slot int) error {
	m, err := e.newMember(slot)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.slots[slot] = m
	e.mu.Unlock()
	m.run(e.runCtx, &e.wg, func(ctx context.Context) { e.campaign(ctx, m) })
	return nil
}

// closeAll closes every client, then its pools and proxies: the crashed
// ones too, only now.
func (e *elector) closeAll() {
	e.mu.Lock()
	members := slices.Clone(e.members)
	e.mu.Unlock()
	for _, m := range members {
		m.close()
	}
}

// campaign loops: Campaign, lead a short random time writing to the fenced
// resource (only before Until() and while the leadership is not known
// lost), resign, pause. A crashed candidate stops where it is: it records
// its leadership as ending at the crash and resigns nothing.
func (e *elector) campaign(ctx context.Context, m *member) {
	rng := rand.New(rand.NewPCG(e.cfg.Seed, uint64(m.id)+1<<33))
	el, err := m.client.Election(e.name)
	if err != nil {
		e.fail(err)
		return
	}
	for ctx.Err() == nil {
		at := time.Now()
		l, err := el.Campaign(ctx, candidateValue(m.id))
		if !m.dead.Load() && e.runCtx.Err() == nil {
			e.rec.AddCall(Call{At: at, Took: time.Since(at), Acquired: err == nil, Err: err, Client: m.id})
		}
		if err != nil {
			continue // the run ended, or the candidate crashed
		}
		start := time.Now()
		m.leading.Store(true)
		e.res.Issued(e.name, l.Token())
		stop := start.Add(time.Duration(rng.Int64N(int64(e.cfg.TTL))))
		for time.Now().Before(stop) && ctx.Err() == nil && !m.dead.Load() {
			if l.Err() != nil || !time.Now().Before(l.Until()) {
				break
			}
			e.res.Write(e.name, l.Token())
			time.Sleep(time.Millisecond)
		}
		end := time.Now()
		if u := l.Until(); u.Before(end) {
			end = u
		}
		if end.Before(start) { // crashed as Campaign returned: it led for no time
			end = start
		}
		m.leading.Store(false)
		if !m.dead.Load() {
			l.Unlock(context.WithoutCancel(ctx))
		}
		e.rec.AddHold(Hold{Name: e.name, Worker: m.id, Token: l.Token(), Start: start, End: end})
		if m.dead.Load() {
			return
		}
		select {
		case <-time.After(time.Duration(rng.Int64N(int64(e.cfg.TTL / 5)))):
		case <-ctx.Done():
		}
	}
}

// observe follows the election with Observe until the run ends.
func (e *elector) observe(m *member, i int) {
	el, err := m.client.Election(e.name)
	if err != nil {
		e.fail(err)
		return
	}
	for l := range el.Observe(e.runCtx) {
		e.mu.Lock()
		e.observed[i] = append(e.observed[i], l)
		e.mu.Unlock()
	}
}

// read asks Leader all the time, each time on a fresh Election, until the
// run ends.
func (e *elector) read(m *member) {
	for e.runCtx.Err() == nil {
		el, err := m.client.Election(e.name)
		if err != nil {
			e.fail(err)
			return
		}
		at := time.Now()
		l, err := el.Leader(e.runCtx)
		if err == nil {
			e.mu.Lock()
			e.reads = append(e.reads, readAnswer{at: at, leader: l})
			e.mu.Unlock()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *elector) fail(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

// candidateFaults injects candidate faults about every CandidateEvery until
// ctx ends, never leaving fewer than two candidates unharmed; then it ends
// every freeze.
func (e *elector) candidateFaults(ctx context.Context) {
	if len(e.el.CandidateKinds) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(e.cfg.Seed, 0xe1ec7))
	every := e.el.CandidateEvery
	var pending []pendingHeal
	for {
		wait := every/2 + time.Duration(rng.Int64N(int64(every)+1))
		next := time.Now().Add(wait)
		for next.After(time.Now()) {
			wake := next
			if len(pending) > 0 && pending[0].at.Before(wake) {
				wake = pending[0].at
			}
			select {
			case <-ctx.Done():
				for _, h := range pending {
					h.do()
				}
				return
			case <-time.After(time.Until(wake)):
			}
			now := time.Now()
			for len(pending) > 0 && !pending[0].at.After(now) {
				pending[0].do()
				pending = pending[1:]
			}
		}
		kind := e.el.CandidateKinds[rng.IntN(len(e.el.CandidateKinds))]
		if h, ok := e.hurt(rng, kind); ok {
			pending = append(pending, h)
			slices.SortFunc(pending, func(a, b pendingHeal) int { return a.at.Compare(b.at) })
		}
	}
}

// hurt applies a candidate fault to the leader (half the time) or to any
// unharmed candidate, if more than two are unharmed.
func (e *elector) hurt(rng *rand.Rand, kind string) (pendingHeal, bool) {
	e.mu.Lock()
	var healthy []*member
	var leader *member
	for _, m := range e.slots {
		if m != nil && !m.dead.Load() && !m.frozen.Load() {
			healthy = append(healthy, m)
			if m.leading.Load() {
				leader = m
			}
		}
	}
	e.mu.Unlock()
	if len(healthy) <= 2 {
		return pendingHeal{}, false
	}
	m := healthy[rng.IntN(len(healthy))]
	if leader != nil && rng.IntN(2) == 0 {
		m = leader
	}
	span := func(lo, hi time.Duration) time.Time {
		return time.Now().Add(lo + time.Duration(rng.Int64N(int64(hi-lo)+1)))
	}
	e.mu.Lock()
	e.counts[kind]++
	e.mu.Unlock()
	switch kind {
	case CandidateCrash:
		m.dead.Store(true) // from now on it acts on nothing
		for _, p := range m.proxies {
			p.Kill() // and nothing of it reaches a node
		}
		m.cancel()
		e.mu.Lock()
		e.slots[m.slot] = nil
		e.mu.Unlock()
		return pendingHeal{at: span(100*time.Millisecond, time.Second), do: func() {
			if e.runCtx.Err() != nil {
				return
			}
			if err := e.startCandidate(m.slot); err != nil {
				e.fail(fmt.Errorf("replacing candidate %d: %w", m.id, err))
			}
		}}, true
	case CandidateFreeze:
		m.frozen.Store(true)
		m.gate.Cut()
		return pendingHeal{at: span(4*e.cfg.NodeTimeout, 3*e.cfg.TTL), do: func() {
			m.gate.Mend()
			m.frozen.Store(false)
		}}, true
	}
	e.fail(fmt.Errorf("unknown candidate fault kind %q", kind))
	return pendingHeal{}, false
}

// Line is the election report's part of a run's human summary.
func (r *ElectionReport) Line() string {
	obs := make([]string, len(r.Observed))
	for i, n := range r.Observed {
		obs[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("election: %d leaderships, %d Leader reads (%d with a leader, %d stale), %d wrong values, observers saw %s leaders, %d out of order, %d unknown terms",
		r.Leaderships, r.Reads, r.ReadsLeader, r.StaleReads, r.WrongValue, strings.Join(obs, "/"), r.OutOfOrder, r.UnknownTerms)
}
