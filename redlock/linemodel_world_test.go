package redlock

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The protocol on N model nodes (lineNode), as the client runs it
// (client.go attempt, Lock and pauseFor; line.go; lock.go release), with
// every order of the per-node deliveries: a world is one state of the
// whole system, and explore walks every state reachable from the start.
//
// What a client does, per client.go:
//   - a waiter's first attempt is plain (SET NX PX GET on every node). If a
//     node refused it, it joins the line (its ticket: the model time it
//     joined, and the order of joining within one instant) and attempts in
//     line at once (line.lua take on every node);
//   - an attempt is decided at the Q-th grant or at the (N-Q+1)-th refusal
//     or failure (A6); the nodes that have not answered by its deadline,
//     T1 + tau, have failed (A3). It succeeds with Q grants while the clock
//     is before T1 + TTL (A7; the model has no drift);
//   - a failed attempt sends the undo to every node that did not refuse,
//     silent ones included (A8): release.lua with '0' for a plain attempt,
//     line.lua undo for one in line, which first sends the waiter to the
//     back with a new ticket when no node refused it (L7); a successful
//     attempt in line sends leave to every node that had not granted it
//     by the decision (L4: a grant takes the entry out);
//   - with direct set, a waiter's first attempt is already in line (L11);
//   - a waiter attempts again within tau of its last failure (L3), earlier
//     whenever it likes (the announcements of releases ring it at moments
//     the model does not track, so it may attempt at any instant; at most
//     once per instant of model time, plus the attempt at once on joining);
//     a plain waiter that is not in line retries within its pause, at most
//     five tau (A9's default pause is below 250 ms = 5 tau);
//   - a holder releases (release.lua with '1', and its waiter's id when it
//     took the lock in line) on every node when it likes (within holdFor); it believes it holds the lock from its success
//     until it sends the release, or until T1 + TTL;
//   - with dying set, one waiter may stop for good while it waits, or give
//     up (leave on every node, gaveUp, giving back the value of its last
//     attempt: Client.leave passes a value on where a node holds it, L12).
//
// The hand-over of L12 is not explored: the clients' attempts carry no
// seq and no lease (as with fencing), so no attempt is registered in G, a
// release reserves the lock for the first in line (L2), and the undo goes
// to the silent nodes at once (a numbered attempt's waits for their
// answers). The hand-over is checked at the node level
// (TestLineModelNeverAddsAGrant, the differential test) and on the client
// (linemodel_bridge_test.go).
//
// Each client has one Lock caller: the hand-over between a client's own
// waiters (L9, the successor put in by the leave) is checked at the node
// level (the differential test and TestLineModelNeverAddsAGrant), not
// explored here. Extend and auto-extension are not modelled either.
//
// How requests travel, per internal/pipe: one connection per client and
// node, so the requests of one client to one node run in the order sent;
// requests to different nodes, and of different clients, in any order. A
// reply reaches its client the instant its node runs the request (the
// search orders the runs on different nodes every way, so every order of
// the replies from different nodes is covered). A healthy node runs a
// request within tau of its sending. A configuration allows a number of
// faults, each one of: a request lost (never run), a reply lost (the
// request ran), or a slow connection (its requests run at any later
// time, or never). A reply not in by its deadline (tau after the request
// was sent) makes the client drop the connection: the requests still in
// flight on it may still run, or not, and the next requests go on a new
// connection, which the node may serve before the old one's (the "undo
// before the write" case of ALGORITHM.md). A node that is down never runs
// anything.
//
// Time is counted in quanta, q per tau; the line's durations are the
// client's (line.go): an entry lives 4 tau, a reservation 4 tau.

// The kinds of requests.
const (
	mSet      uint8 = iota // a plain attempt: SET NX PX GET
	mTake                  // an attempt in line: line.lua take
	mUndo                  // a failed attempt's undo in line: line.lua undo
	mRelease0              // a failed plain attempt's undo: release.lua '0'
	mUnlock                // a holder's release: release.lua '1'
	mLeave                 // line.lua leave, after a success (no value)
	mGiveUp                // line.lua leave of a waiter that gave up, with its value (L12)
)

var msgNames = [...]string{"set", "take", "undo", "release '0'", "unlock", "leave", "leave (gave up)"}

// modelMsg is one request from a client to a node.
type modelMsg struct {
	kind    uint8
	attempt uint8 // the attempt whose value it carries
	sent    int64 // its deadline is sent + tau
	ticket  int64 // its place in line (L1), from joining, or from going to the back (L7) // the ticket it carries (take, undo)
}

// modelConn is one connection from a client to a node: the requests in
// flight on it, in order.
type modelConn struct {
	msgs  []modelMsg
	dead  bool  // dropped by the client: nothing more is sent on it
	stall int64 // the deadline of a request lost, or whose reply was lost; -1: none
	slow  bool  // a fault: its requests run at any later time, or never
}

// Client phases.
const (
	pNew     uint8 = iota // has not attempted yet
	pTrying               // an attempt in flight
	pIdle                 // between attempts
	pHolding              // holds the lock
	pDone                 // released it
	pDead                 // stopped: sends nothing more
)

var phaseNames = [...]string{"new", "trying", "idle", "holding", "done", "dead"}

// Slot results of the attempt in flight.
const (
	sPending uint8 = iota
	sGranted
	sRefused
	sFailed
)

const (
	maxModelNodes   = 5
	maxModelClients = 4
)

type modelClient struct {
	phase   uint8
	inLine  bool
	ticket  int64 // its place in line (L1), from joining, or from going to the back (L7)
	attempt uint8 // attempts made; the value of attempt k is valueOf(c, k)
	plain   bool  // the attempt in flight is a plain one
	slots   [maxModelNodes]uint8
	t1      int64 // the attempt's T1
	since   int64 // idle since, holding since
	tried   int64 // when the last attempt started (-1: never)
}

// worldConfig is one configuration to explore.
type worldConfig struct {
	name    string
	n       int   // nodes
	waiters int   // clients besides the first holder
	q       int64 // quanta per tau
	down    []int // nodes that never run anything
	faults  int   // lost requests, lost replies and slow connections allowed, in all
	dying   bool  // one waiter may stop for good, or give up, while it waits (L3, L4)
	arrive  int64 // waiters arrive (their first attempt) no later than this
	// registered starts the waiters in line on every node instead, their
	// first attempt in line made, failed and undone: the hand-over alone.
	registered bool
	// direct: the waiters' first attempt is in line, as a client that
	// waited for the name a moment ago makes it (L11).
	direct bool
	// noRights: the nodes' ACL user may not use the line (L8).
	noRights bool
	holdFor  int64 // a holder releases within this
	tries    int   // attempts per waiter (0: unbounded)
	horizon  int64 // model time explored
	ttl      int64 // the lock's TTL, in quanta
	bound    int64 // progress: a freed lock is taken within this (0: not checked)
	limit    int   // states explored at most (0: 20 million)

	// Derived.
	quorum              int
	life, reserve, ttlQ int64
	isDown              [maxModelNodes]bool
	values              [][]string
	refs                map[string]valueRef // what a key or an id names
}

func (cfg *worldConfig) init() {
	cfg.quorum = cfg.n/2 + 1 // A5, from the rule
	cfg.life = 4 * cfg.q     // lineLifetime
	cfg.reserve = 4 * cfg.q  // reserveFor
	cfg.ttlQ = cfg.ttl
	for _, i := range cfg.down {
		cfg.isDown[i] = true
	}
	cfg.values = make([][]string, 1+cfg.waiters)
	cfg.refs = map[string]valueRef{}
	for c := range cfg.values {
		for a := range 2*cfg.horizon + 4 {
			v := "h"
			if c > 0 {
				v = fmt.Sprintf("W%d.%d", c, a)
				cfg.refs[v] = valueRef{c: c, attempt: uint8(a)}
			}
			cfg.values[c] = append(cfg.values[c], v)
		}
		cfg.refs[waiterID(c)] = valueRef{c: c}
		cfg.refs["~r:"+waiterID(c)] = valueRef{c: c, reservation: true}
	}
	cfg.refs["h"] = valueRef{}
	if 2*cfg.horizon+4 > 64 {
		panic("attempts are counted in a uint64")
	}
}

// valueRef is what a key's value names: a client's value, or a
// reservation for a waiter; or what an entry's id names.
type valueRef struct {
	c           int
	attempt     uint8
	reservation bool
}

func waiterID(c int) string { return "w" + strconv.Itoa(c) }

// world is one state of the system.
type world struct {
	cfg    *worldConfig
	now    int64
	nodes  []lineNode
	cl     []modelClient
	conns  [][]modelConn // per client and node (c*n + i): the last is the one in use
	faults int           // faults so far
	joins  int64
	died   bool
	// The properties' bookkeeping.
	freedAt int64 // when the last holder released, until the next success; -1: none
	expect  int   // L1: the waiter the next success must be; -1: none

	log     *[]string // when not nil, apply tells each step here (describe)
	tickets []int64   // scratch for key

	// The storage of nodes, cl and conns: one allocation per state.
	nodeArr [maxModelNodes]lineNode
	clArr   [maxModelClients]modelClient
	connArr [maxModelClients * maxModelNodes][]modelConn
}

// say logs a step; callers check w.log first, so that exploring formats
// nothing.
func (w *world) say(format string, args ...any) {
	*w.log = append(*w.log, fmt.Sprintf("t=%d ", w.now)+fmt.Sprintf(format, args...))
}

func newWorld(cfg *worldConfig) *world {
	w := &world{cfg: cfg, freedAt: -1, expect: -1}
	w.nodes, w.cl, w.conns = w.nodeArr[:cfg.n], w.clArr[:1+cfg.waiters], w.connArr[:(1+cfg.waiters)*cfg.n]
	for i := range w.nodes {
		w.nodes[i] = lineNode{key: "h", keyExp: cfg.ttlQ, noRights: cfg.noRights}
	}
	for c := range w.cl {
		w.cl[c] = modelClient{tried: -1, ticket: -1}
	}
	w.cl[0].phase = pHolding
	if cfg.registered { // every waiter in line, on every node, by its number
		for c := 1; c <= cfg.waiters; c++ {
			w.cl[c] = modelClient{phase: pIdle, inLine: true, ticket: int64(c), attempt: 1, tried: -1}
			w.joins++
			for i := range w.nodes {
				n := &w.nodes[i]
				n.line = append(n.line, lineEntry{waiterID(c), int64(c), cfg.life})
				n.lineExp, n.lineTTL = 2*cfg.life, true
			}
		}
	}
	return w
}

// cloneInto makes c a copy of w. The lines and connections it shares with
// w are never written in place.
func (w *world) cloneInto(c *world) {
	*c = *w
	c.nodes, c.cl, c.conns = c.nodeArr[:len(w.nodes)], c.clArr[:len(w.cl)], c.connArr[:len(w.conns)]
}

func (w *world) value(c int, attempt uint8) string { return w.cfg.values[c][attempt] }

// key appends the state's encoding to b: equal encodings, equal futures
// (of the nodes, the clients and the properties checked). What does not
// change the future is left out or named by what it means:
//   - the nodes are interchangeable (a permutation of the nodes, with the
//     requests in flight to them and the clients' answers from them, maps
//     every run to a run with the same properties), so each node's column
//     is encoded on its own and the columns are sorted;
//   - a value is named by its client and its rank among that client's
//     values still present somewhere (in a key, in flight, or its current
//     one): values only ever meet by equality, and a new attempt's value
//     is new under either naming;
//   - a ticket by its rank among the tickets present (tickets only
//     compare, and new ones come after all others);
//   - an expired key as no key, an expired entry as no entry (the scripts
//     drop them unread), but the line's hash by whether it exists and its
//     expiry (a hash outliving its entries keeps its expiry for the next
//     HSET; an undo can make one without).
func (w *world) key(b []byte, cols [][]byte) ([]byte, [][]byte) {
	cfg := w.cfg
	// The values of each client still present.
	var used [maxModelClients]uint64
	for c := range w.cl {
		used[c] |= 1 << w.cl[c].attempt
		for i := range cfg.n {
			for _, cn := range w.conns[c*cfg.n+i] {
				for _, m := range cn.msgs {
					used[c] |= 1 << m.attempt
				}
			}
		}
	}
	for _, n := range w.nodes {
		if r, ok := cfg.refs[n.key]; ok && !r.reservation && w.now <= n.keyExp {
			used[r.c] |= 1 << r.attempt
		}
	}
	rank := func(c int, a uint8) byte { return byte(bits.OnesCount64(used[c] & (1<<a - 1))) }
	// The tickets present.
	tickets := w.tickets[:0]
	for c := range w.cl {
		if w.cl[c].ticket >= 0 {
			tickets = append(tickets, w.cl[c].ticket)
		}
		for i := range cfg.n {
			for _, cn := range w.conns[c*cfg.n+i] {
				for _, m := range cn.msgs {
					tickets = append(tickets, m.ticket)
				}
			}
		}
	}
	for _, n := range w.nodes {
		for _, e := range n.line {
			tickets = append(tickets, e.ticket)
		}
	}
	slices.Sort(tickets)
	tickets = slices.Compact(tickets)
	w.tickets = tickets
	place := func(t int64) byte {
		i, _ := slices.BinarySearch(tickets, t)
		return byte(i)
	}
	b = binary.AppendVarint(b, w.now)
	for c, cl := range w.cl {
		b = append(b, cl.phase, boolByte(cl.inLine), boolByte(cl.plain), boolByte(cl.tried == w.now))
		joined := byte(0) // 0: never joined; else 1 + its ticket's rank
		if cl.ticket >= 0 {
			joined = 1 + place(cl.ticket)
		}
		b = append(b, joined, rank(c, cl.attempt))
		if cfg.tries > 0 {
			b = append(b, cl.attempt)
		}
		if cl.phase == pTrying || cl.phase == pHolding {
			b = binary.AppendVarint(b, cl.t1)
		}
		if cl.phase == pIdle || cl.phase == pHolding {
			b = binary.AppendVarint(b, cl.since)
		}
	}
	b = binary.AppendVarint(b, int64(w.faults))
	b = append(b, boolByte(w.died))
	b = binary.AppendVarint(b, w.freedAt)
	b = binary.AppendVarint(b, int64(w.expect))
	for len(cols) < len(w.nodes) {
		cols = append(cols, nil)
	}
	cols = cols[:len(w.nodes)]
	for i, n := range w.nodes {
		col := append(cols[i][:0], boolByte(cfg.isDown[i]))
		switch r, ok := cfg.refs[n.key]; {
		case n.key == "" || w.now > n.keyExp:
			col = append(col, 0)
		case !ok:
			panic("a key the model does not know: " + n.key)
		case r.reservation:
			col = append(col, 1, byte(r.c))
			col = binary.AppendVarint(col, n.keyExp)
		default:
			col = append(col, 2, byte(r.c), rank(r.c, r.attempt))
			col = binary.AppendVarint(col, n.keyExp)
		}
		for _, e := range n.line {
			if e.exp > w.now {
				col = append(col, byte(cfg.refs[e.id].c), place(e.ticket))
				col = binary.AppendVarint(col, e.exp)
			}
		}
		switch {
		case n.line == nil || n.lineTTL && w.now > n.lineExp:
			col = append(col, 0xfd)
		case !n.lineTTL:
			col = append(col, 0xfe)
		default:
			col = append(col, 0xff)
			col = binary.AppendVarint(col, n.lineExp)
		}
		for c := range w.cl {
			slot := byte(0)
			if w.cl[c].phase == pTrying {
				slot = w.cl[c].slots[i]
			}
			col = append(col, slot)
			cs := w.conns[c*cfg.n+i]
			col = binary.AppendUvarint(col, uint64(len(cs)))
			for _, cn := range cs {
				col = append(col, boolByte(cn.dead))
				col = binary.AppendVarint(col, cn.stall)
				col = binary.AppendUvarint(col, uint64(len(cn.msgs)))
				for _, m := range cn.msgs {
					col = append(col, m.kind, rank(c, m.attempt), place(m.ticket))
					col = binary.AppendVarint(col, m.sent)
				}
			}
		}
		cols[i] = col
	}
	slices.SortFunc(cols, bytes.Compare)
	for _, col := range cols {
		b = binary.AppendUvarint(b, uint64(len(col)))
		b = append(b, col...)
	}
	return b, cols
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Event kinds.
const (
	eDeliver uint8 = iota // a node runs the first request of a connection
	eDrop                 // that request is lost
	eSilent               // the node runs it, its reply is lost
	eSlow                 // the connection becomes slow
	eArrive               // a waiter's first attempt
	eAttempt              // a waiter attempts again
	eUnlock               // a holder releases
	eDie                  // a waiter stops for good
	eGiveUp               // a waiter gives up: it leaves the line (gaveUp)
	eTick                 // time moves one quantum
)

type modelEvent struct {
	kind    uint8
	c, i, k int // client, node, connection
}

func (w *world) canFail() bool { return w.faults < w.cfg.faults }

// events lists what can happen next.
func (w *world) events(evs []modelEvent) []modelEvent {
	cfg := w.cfg
	for c := range w.cl {
		for i := range cfg.n {
			for k, cn := range w.conns[c*cfg.n+i] {
				if len(cn.msgs) == 0 {
					continue
				}
				evs = append(evs, modelEvent{eDeliver, c, i, k})
				if cn.slow && !w.canFail() {
					evs = append(evs, modelEvent{eDrop, c, i, k}) // a slow node may never run it
				}
				if w.canFail() {
					evs = append(evs, modelEvent{eDrop, c, i, k})
					if !cn.slow {
						evs = append(evs, modelEvent{eSlow, c, i, k})
					}
					m := cn.msgs[0]
					cl := &w.cl[c]
					if !cn.slow && (m.kind == mSet || m.kind == mTake) && cl.phase == pTrying && m.attempt == cl.attempt && cl.slots[i] == sPending {
						evs = append(evs, modelEvent{eSilent, c, i, k})
					}
				}
			}
		}
	}
	for c := range w.cl {
		cl := &w.cl[c]
		switch cl.phase {
		case pNew:
			if w.now <= cfg.arrive {
				evs = append(evs, modelEvent{kind: eArrive, c: c})
			}
		case pIdle:
			if cl.tried != w.now && (cfg.tries == 0 || int(cl.attempt) < cfg.tries) {
				evs = append(evs, modelEvent{kind: eAttempt, c: c})
			}
			if cfg.dying && !w.died && cl.inLine {
				evs = append(evs, modelEvent{kind: eDie, c: c}, modelEvent{kind: eGiveUp, c: c})
			}
		case pHolding:
			evs = append(evs, modelEvent{kind: eUnlock, c: c})
		}
	}
	if w.now < cfg.horizon && w.mayTick() {
		evs = append(evs, modelEvent{kind: eTick})
	}
	return evs
}

// mayTick says whether time may move on: not past a deadline someone must
// keep.
func (w *world) mayTick() bool {
	cfg := w.cfg
	next := w.now + 1
	for _, cs := range w.conns {
		for _, cn := range cs {
			if !cn.slow && len(cn.msgs) > 0 && cn.msgs[0].sent+cfg.q <= next {
				return false // a healthy node answers within tau
			}
		}
	}
	for c, cl := range w.cl {
		switch {
		case cl.phase == pNew && next > cfg.arrive:
			return false
		case cl.phase == pIdle && cfg.tries > 0 && int(cl.attempt) >= cfg.tries:
			// out of attempts: it waits for nothing
		case cl.phase == pIdle && cl.inLine && next > cl.since+cfg.q:
			return false // L3: a waiter in line attempts every tau
		case cl.phase == pIdle && !cl.inLine && next > cl.since+5*cfg.q:
			return false
		case cl.phase == pHolding && c == 0 && next > cfg.holdFor:
			return false
		case cl.phase == pHolding && c > 0 && next > cl.since+cfg.holdFor:
			return false
		}
	}
	return true
}

// stateHash names a state by 128 bits of hash of its encoding: the
// states explored number millions at most, so two that collide are
// beyond any chance that matters (about 2^-80), and the memo holds no
// pointers for the collector to scan.
type stateHash [2]uint64

var seed0, seed1 = maphash.MakeSeed(), maphash.MakeSeed()

// explorer walks the states.
type explorer struct {
	cfg      *worldConfig
	memo     map[stateHash]float64 // state -> number of complete interleavings from it
	path     []modelEvent
	failure  string
	failPath []modelEvent
	buf      []byte
	cols     [][]byte
	evs      [][]modelEvent // per depth
	limit    int            // states explored at most
	// The totals.
	interleavings float64
	elapsed       time.Duration
	worlds        []*world // per depth: the successor being explored
	// Measures.
	maxDelay    int64        // the longest time from a release to the next success
	maxPath     []modelEvent // an interleaving with that wait
	stops       int          // waiters stopped or given up (in distinct states)
	late        int          // releases sent after the holder's deadline (its keys may be gone)
	handovers   int          // successes after a release
	successes   int
	orderChecks int
	leaves      int
}

// violation records the first property broken, with the path to it.
func (x *explorer) violation(format string, args ...any) {
	if x.failure == "" {
		x.failure = fmt.Sprintf(format, args...)
		x.failPath = slices.Clone(x.path)
	}
}

// visit explores from w and returns the number of complete interleavings
// (paths to a state where nothing more can happen, or to the horizon).
func (x *explorer) visit(w *world) float64 {
	if x.failure != "" {
		return 0
	}
	x.buf, x.cols = w.key(x.buf[:0], x.cols)
	k := stateHash{maphash.Bytes(seed0, x.buf), maphash.Bytes(seed1, x.buf)}
	if n, ok := x.memo[k]; ok {
		return n
	}
	if len(x.memo) >= x.limit {
		x.violation("more than %d states: bound the configuration", x.limit)
		return 0
	}
	x.check(w)
	depth := len(x.path)
	for len(x.evs) <= depth {
		x.evs = append(x.evs, nil)
	}
	evs := w.events(x.evs[depth][:0])
	x.evs[depth] = evs
	if len(evs) == 0 {
		if w.now < w.cfg.horizon {
			for c, cl := range w.cl {
				if cl.phase == pNew || cl.phase == pIdle && (w.cfg.tries == 0 || int(cl.attempt) < w.cfg.tries) || cl.phase == pTrying {
					x.violation("stuck at %d: nothing can happen, yet client %d is %s", w.now, c, phaseNames[cl.phase])
				}
			}
		}
		x.leaves++
		x.memo[k] = 1
		return 1
	}
	total := 0.0
	for len(x.worlds) <= depth {
		x.worlds = append(x.worlds, new(world))
	}
	nw := x.worlds[depth] // the successors are explored one at a time
	for _, e := range evs {
		w.cloneInto(nw)
		x.path = append(x.path, e)
		nw.apply(e, x)
		total += x.visit(nw)
		x.path = x.path[:len(x.path)-1]
		if x.failure != "" {
			return 0
		}
	}
	x.memo[k] = total
	return total
}

// check tests the properties of one state.
func (x *explorer) check(w *world) {
	cfg := w.cfg
	believers := 0
	for c, cl := range w.cl {
		if cl.phase != pHolding || w.now >= cl.t1+cfg.ttlQ {
			continue
		}
		believers++
		// L2, A7: a holder's belief is backed by Q nodes holding its value.
		v, held := w.value(c, cl.attempt), 0
		for i, n := range w.nodes {
			if !cfg.isDown[i] && n.key == v && w.now <= n.keyExp {
				held++
			}
		}
		if held < cfg.quorum {
			x.violation("client %d believes it holds the lock (value %s) but only %d nodes hold its value", c, v, held)
		}
	}
	if believers > 1 {
		x.violation("%d clients believe they hold the lock at once", believers)
	}
	// L6: a freed lock is taken within the bound while someone waits.
	if cfg.bound > 0 && w.freedAt >= 0 && w.now-w.freedAt > cfg.bound {
		for c, cl := range w.cl {
			if c > 0 && (cl.phase == pIdle || cl.phase == pTrying) {
				x.violation("released at %d, and at %d (%d tau later) nobody holds the lock though waiter %d waits", w.freedAt, w.now, (w.now-w.freedAt)/cfg.q, c)
				break
			}
		}
	}
}

// apply makes e happen; x, when not nil, checks and measures.
func (w *world) apply(e modelEvent, x *explorer) {
	cfg := w.cfg
	switch e.kind {
	case eSlow:
		cs := slices.Clone(w.conns[e.c*cfg.n+e.i])
		cs[e.k].slow = true
		w.conns[e.c*cfg.n+e.i] = cs
		w.faults++
		w.expect = -1 // L1 is promised only without faults
		if w.log != nil {
			w.say("client %d's connection to node %d is slow (a fault)", e.c, e.i)
		}
	case eDeliver, eDrop, eSilent:
		cs := slices.Clone(w.conns[e.c*cfg.n+e.i])
		cn := cs[e.k]
		m := cn.msgs[0]
		cn.msgs = cn.msgs[1:]
		if e.kind != eDeliver {
			if !cn.slow || e.kind == eSilent {
				w.faults++
				w.expect = -1
			}
			if !cn.dead && (cn.stall < 0 || m.sent+cfg.q < cn.stall) {
				cn.stall = m.sent + cfg.q
			}
		}
		cs[e.k] = cn
		w.conns[e.c*cfg.n+e.i] = tidy(cs)
		if e.kind == eDrop {
			if w.log != nil {
				w.say("client %d's %s (attempt %d) to node %d is lost (a fault)", e.c, msgNames[m.kind], m.attempt, e.i)
			}
			return
		}
		// A dropped connection's replies reach nobody.
		w.run(e.c, e.i, m, e.kind == eDeliver && !cn.dead, x)
	case eArrive, eAttempt:
		w.start(e.c)
	case eUnlock:
		cl := &w.cl[e.c]
		if x != nil && w.now >= cl.t1+cfg.ttlQ {
			x.late++
		}
		if w.log != nil {
			w.say("client %d releases (its value %s)", e.c, w.value(e.c, cl.attempt))
		}
		cl.phase = pDone
		w.send(e.c, mUnlock, cl.attempt)
		w.freedAt = w.now
		w.expect = w.nextInOrder()
		if w.log != nil && w.expect >= 0 {
			w.say("every node has waiter %d's entry, and it is first by ticket: it must be served next (L1)", w.expect)
		}
	case eGiveUp:
		if x != nil {
			x.stops++
		}
		if w.log != nil {
			w.say("client %d gives up: leave to every node", e.c)
		}
		w.send(e.c, mGiveUp, w.cl[e.c].attempt)
		fallthrough
	case eDie:
		if x != nil && e.kind == eDie {
			x.stops++
		}
		if w.log != nil && e.kind == eDie {
			w.say("client %d stops for good", e.c)
		}
		w.cl[e.c].phase = pDead
		w.died = true
		if w.expect == e.c { // L1 promises nothing to a waiter that stopped
			w.expect = -1
		}
	case eTick:
		w.now++
		if w.log != nil {
			w.say("time passes")
		}
		for c := range w.cl {
			for i := range cfg.n {
				cs := w.conns[c*cfg.n+i]
				if len(cs) == 0 {
					continue
				}
				cn := cs[len(cs)-1]
				late := len(cn.msgs) > 0 && cn.msgs[0].sent+cfg.q <= w.now
				if cn.dead || !late && (cn.stall < 0 || cn.stall > w.now) {
					continue
				}
				// A reply missed its deadline: the client drops the
				// connection, failing what is in flight on it.
				cs = slices.Clone(cs)
				cs[len(cs)-1].dead, cs[len(cs)-1].stall = true, -1
				w.conns[c*cfg.n+i] = tidy(cs)
				if cl := &w.cl[c]; cl.phase == pTrying && cl.slots[i] == sPending {
					cl.slots[i] = sFailed
				}
				if w.log != nil {
					w.say("client %d drops its connection to node %d (a reply is late)", c, i)
				}
			}
		}
		for c := range w.cl {
			cl := &w.cl[c]
			if cl.phase == pTrying && cl.t1+cfg.q <= w.now {
				for i := range cfg.n { // A3: the nodes silent at the deadline failed
					if cl.slots[i] == sPending {
						cl.slots[i] = sFailed
					}
				}
			}
			w.decide(c, x)
		}
	}
}

// run has node i run m from client c; reply says whether c gets the reply.
func (w *world) run(c, i int, m modelMsg, reply bool, x *explorer) {
	cfg := w.cfg
	n := w.nodes[i] // the model's methods never write a shared line in place
	before, beforeExp := n.key, n.keyExp
	clk := scriptClock{snap: w.now}
	v := w.value(c, m.attempt)
	granted := false
	var r int64
	var pub announcement
	switch m.kind {
	case mSet:
		granted, _ = n.setNX(&clk, v, cfg.ttlQ)
	case mTake:
		granted = n.take(&clk, waiterID(c), v, cfg.ttlQ, m.ticket, cfg.life, false, "", "") > 0
	case mUndo:
		r, pub = n.undo(&clk, waiterID(c), v, m.ticket, cfg.life, cfg.reserve)
	case mRelease0:
		r, pub = n.release(&clk, v, false, cfg.reserve, "")
	case mUnlock: // with its waiter's id when it took the lock in line (L12)
		id := ""
		if !w.cl[c].plain {
			id = waiterID(c)
		}
		r, pub = n.release(&clk, v, true, cfg.reserve, id)
	case mLeave:
		r, pub = n.leave(&clk, waiterID(c), "", cfg.reserve, nil)
	case mGiveUp:
		r, pub = n.leave(&clk, waiterID(c), v, cfg.reserve, nil)
	}
	if w.log != nil {
		what := fmt.Sprintf("%d", r)
		if m.kind == mSet || m.kind == mTake {
			what = map[bool]string{true: "granted", false: "refused"}[granted]
		}
		if pub != (announcement{}) {
			what += fmt.Sprintf(", announced %q on %q", pub.msg, pub.suffix)
		}
		if !reply {
			what += " (reply lost)"
		}
		w.say("node %d runs client %d's %s (attempt %d, value %s) -> %s; node %d: %v", i, c, msgNames[m.kind], m.attempt, v, what, i, &n)
	}
	// L2: a script changes a live lock only when its holder releases it
	// (or the waiter whose value it is gives it back, L12).
	if x != nil && before != "" && !strings.HasPrefix(before, "~r:") && w.now <= beforeExp && n.key != before &&
		!((m.kind == mUndo || m.kind == mRelease0 || m.kind == mUnlock || m.kind == mGiveUp) && v == before) {
		x.violation("node %d's live lock %s became %q by client %d's %s", i, before, n.key, c, msgNames[m.kind])
	}
	w.nodes[i] = n
	cl := &w.cl[c]
	if !reply || (m.kind != mSet && m.kind != mTake) || cl.phase != pTrying || m.attempt != cl.attempt || cl.slots[i] != sPending {
		return
	}
	cl.slots[i] = sRefused
	if granted {
		cl.slots[i] = sGranted
	}
	w.decide(c, x)
}

// send queues a request from c to every node that is up.
func (w *world) send(c int, kind, attempt uint8) {
	w.sendTo(c, kind, attempt, [maxModelNodes]bool{true, true, true, true, true})
}

func (w *world) sendTo(c int, kind, attempt uint8, to [maxModelNodes]bool) {
	cfg := w.cfg
	for i := range cfg.n {
		if cfg.isDown[i] || !to[i] {
			continue
		}
		cs := slices.Clone(w.conns[c*cfg.n+i])
		m := modelMsg{kind: kind, attempt: attempt, sent: w.now, ticket: w.cl[c].ticket}
		if len(cs) == 0 || cs[len(cs)-1].dead {
			cs = append(cs, modelConn{stall: -1})
		}
		last := &cs[len(cs)-1]
		last.msgs = append(slices.Clip(last.msgs), m)
		w.conns[c*cfg.n+i] = tidy(cs)
	}
}

// tidy forgets the connections with nothing in flight and nothing late:
// a new request would open a new one, which is the same.
func tidy(cs []modelConn) []modelConn {
	return slices.DeleteFunc(cs, func(cn modelConn) bool { return len(cn.msgs) == 0 && (cn.dead || cn.stall < 0) })
}

// start begins an attempt of c: plain, or in line (A1: a new value).
func (w *world) start(c int) {
	cl := &w.cl[c]
	if w.cfg.direct && cl.attempt == 0 && !cl.inLine { // L11: in line at once
		cl.inLine = true
		w.newTicket(c)
	}
	cl.attempt++
	cl.phase, cl.plain, cl.t1, cl.tried = pTrying, !cl.inLine, w.now, w.now
	cl.slots = [maxModelNodes]uint8{}
	kind := mTake
	if cl.plain {
		kind = mSet
	}
	if w.log != nil {
		w.say("client %d attempts: %s (attempt %d, value %s) to every node", c, msgNames[kind], cl.attempt, w.value(c, cl.attempt))
	}
	w.send(c, kind, cl.attempt)
}

// decide ends c's attempt when its outcome is known (A6), as attempt does.
func (w *world) decide(c int, x *explorer) {
	cfg := w.cfg
	cl := &w.cl[c]
	if cl.phase != pTrying {
		return
	}
	granted, against, refused := 0, 0, false
	for i := range cfg.n {
		switch cl.slots[i] {
		case sGranted:
			granted++
		case sRefused:
			against++
			refused = true
		case sFailed:
			against++
		}
	}
	switch {
	case granted >= cfg.quorum && w.now < cl.t1+cfg.ttlQ: // A7
		if w.log != nil {
			w.say("client %d takes the lock (%d grants)", c, granted)
		}
		w.acquired(c, x)
		cl.phase, cl.since = pHolding, w.now
		if cl.inLine { // L4: out of the line where the grant did not take it out
			var leave [maxModelNodes]bool
			for i := range cfg.n {
				leave[i] = cl.slots[i] != sGranted
			}
			w.sendTo(c, mLeave, cl.attempt, leave)
			cl.inLine = false
		}
		return
	case granted >= cfg.quorum, against >= cfg.n-cfg.quorum+1:
	default:
		return // undecided
	}
	if w.log != nil {
		w.say("client %d's attempt failed (%d grants, %d against): undo where not refused", c, granted, against)
	}
	// A8: undo everywhere but where refused; L7: in line, with no node
	// refusing, to the back of the line first.
	var undo [maxModelNodes]bool
	for i := range cfg.n {
		undo[i] = cl.slots[i] != sRefused
	}
	kind := mRelease0
	if !cl.plain {
		kind = mUndo
		if !refused {
			w.newTicket(c)
			if w.log != nil {
				w.say("client %d goes to the back of the line: ticket %d (L7)", c, cl.ticket)
			}
		}
	}
	w.sendTo(c, kind, cl.attempt, undo)
	cl.phase, cl.since = pIdle, w.now
	if cl.plain && refused { // held elsewhere: join the line, attempt at once
		cl.inLine = true
		w.newTicket(c)
		if w.log != nil {
			w.say("client %d joins the line with ticket %d", c, cl.ticket)
		}
		w.start(c)
	}
}

// newTicket gives c a place behind every ticket handed out so far: now,
// in order of asking within one instant (Client.ticket).
func (w *world) newTicket(c int) {
	w.cl[c].ticket = w.now*100 + w.joins
	w.joins++
}

// acquired records c's success for the properties.
func (w *world) acquired(c int, x *explorer) {
	defer func() { w.freedAt, w.expect = -1, -1 }()
	if x == nil {
		return
	}
	x.successes++
	if w.freedAt >= 0 {
		d := w.now - w.freedAt
		x.handovers++
		if d > x.maxDelay || x.maxPath == nil {
			x.maxDelay, x.maxPath = d, slices.Clone(x.path)
		}
		if w.cfg.bound > 0 && d > w.cfg.bound {
			x.violation("released at %d, taken by client %d only at %d: %d quanta > the bound %d", w.freedAt, c, w.now, d, w.cfg.bound)
		}
	}
	if w.expect >= 0 {
		x.orderChecks++
		if c != w.expect {
			x.violation("L1: client %d took the lock, but waiter %d (ticket %d) was first in line on every node when it was released", c, w.expect, w.cl[w.expect].ticket)
		}
	}
}

// nextInOrder returns the waiter that must be served next (L1) when the
// lock is released now: in a run without faults, where nobody is down or
// stopped, the first by ticket of the waiters in line, provided every node
// has its entry alive and first. Otherwise -1.
func (w *world) nextInOrder() int {
	cfg := w.cfg
	if w.faults > 0 || len(cfg.down) > 0 || w.died || cfg.noRights {
		return -1
	}
	first := -1
	for c, cl := range w.cl {
		if c > 0 && cl.inLine && (cl.phase == pIdle || cl.phase == pTrying) && (first < 0 || cl.ticket < w.cl[first].ticket) {
			first = c
		}
	}
	if first < 0 {
		return -1
	}
	for i := range w.nodes {
		var best *lineEntry
		for j, e := range w.nodes[i].line {
			if e.exp > w.now && (best == nil || e.ticket < best.ticket || e.ticket == best.ticket && e.id < best.id) {
				best = &w.nodes[i].line[j]
			}
		}
		if best == nil || best.id != waiterID(first) {
			return -1
		}
	}
	return first
}

// describe replays path from the start and tells every step.
func describe(cfg *worldConfig, path []modelEvent) string {
	w := newWorld(cfg)
	var log []string
	w.log = &log
	for _, e := range path {
		w.apply(e, nil)
	}
	return strings.Join(log, "\n  ")
}

// explore walks every state of cfg and fails t on the first property
// broken, with the interleaving that breaks it.
func explore(t *testing.T, cfg *worldConfig) *explorer {
	t.Helper()
	cfg.init()
	x := &explorer{cfg: cfg, memo: map[stateHash]float64{}, limit: 20_000_000}
	if cfg.limit > 0 {
		x.limit = cfg.limit
	}
	start := time.Now()
	x.interleavings = x.visit(newWorld(cfg))
	x.elapsed = time.Since(start)
	if x.failure != "" {
		t.Fatalf("%s: %s\ninterleaving:\n  %s", cfg.name, x.failure, describe(cfg, x.failPath))
	}
	t.Logf("%s: %d states, %.3g interleavings, %d successes, %d after a release (longest wait %d tau), %d order checks, %d stops; %v",
		cfg.name, len(x.memo), x.interleavings, x.successes, x.handovers, x.maxDelay/cfg.q, x.orderChecks, x.stops, x.elapsed.Round(time.Millisecond))
	return x
}
