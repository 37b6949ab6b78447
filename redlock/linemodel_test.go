package redlock

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file is a Go model of what one node does for one lock name: the
// lock key, the line of waiters, its grants (L12) and the fencing counter,
// as line.lua (take, leave, undo, claim), release.lua (both with
// line_head.lua) and the plain
// acquisition (SET NX PX GET, acquire.lua) change them. It mirrors the
// scripts statement by statement, the node's clocks and the ACL fallback
// (L8) included: the differential test (linemodel_diff_test.go) runs
// random sequences on the model and on a real redis-server through the
// real scripts and compares every reply, announcement and resulting state,
// and the interleaving tests (linemodel_world_test.go) explore the
// protocol on N such nodes.

// lineNode is one node's state for one lock name. Times are the node's
// clock in milliseconds (in the interleaving tests: model time).
type lineNode struct {
	key     string      // the lock key's value; "" when the key does not exist
	keyExp  int64       // the key's expiry (always set: every write has PX)
	line    []lineEntry // the line's hash, sorted by id; nil when it does not exist
	lineExp int64       // the hash's expiry, when lineTTL
	lineTTL bool        // the hash has an expiry (an undo's HSET can make one without)
	counter int64       // the fencing counter; 0 when it does not exist
	// The line's grants G (L12): the hash of the attempts the waiters
	// registered for a hand-over, field = id, value = "seq:lease:value",
	// sorted by id; nil when it does not exist. Its entries have no expiry of
	// their own (live() drops an expired entry's value from G with it);
	// the hash has one, set as the line's is.
	grants    []grantEntry
	grantsExp int64
	grantsTTL bool
	// noRights: the scripts' user may not run the line's commands (TIME,
	// HGETALL, HSET, HDEL; HGET of G, L12): every redis.pcall on them
	// fails (L8). The line's PEXPIREs then never run (they follow a TIME);
	// the lock key's (a claim's) does.
	noRights bool

	cov lineCoverage // which branches ran, when not nil (not part of the state)
	// The expiries the last command set count from the node's clock when it
	// ran SET PX or PEXPIRE, which the model takes to be its latest clock
	// read (mstime), the earliest it can be: the differential test accepts
	// any later base within its window. Not part of the state.
	pxKey     int64     // the duration of the key's expiry set (0: none)
	lineSet   lineWrite // the line's PEXPIREs
	grantsSet lineWrite // G's PEXPIREs
	keySet    lineWrite // a claim's PEXPIRE GT of the key (d: its TTL; hadTTL always)
}

// grantEntry is one field of G: id -> "seq:lease:value", kept as written
// (hand splits it at its first two ':', as line_head.lua does).
type grantEntry struct {
	id string
	g  string
}

// lineWrite is what the last command's PEXPIREs of the line did.
type lineWrite struct {
	d      int64 // 2 * lifetime; 0: no PEXPIRE ran
	hadTTL bool  // the hash had an expiry before (NX then did nothing)
	was    int64 // that expiry
	gt     bool  // a PEXPIRE GT followed the NX
	base   int64 // the clock it ran at, as the model takes it (mstime then)
}

// lineEntry is one field of the line's hash: id -> "ticket:exp".
type lineEntry struct {
	id     string
	ticket int64
	exp    int64
}

// lineCoverage counts the branches of the scripts the model ran, so a test
// can show its random operations reached each of them.
type lineCoverage map[string]int

func (c lineCoverage) hit(branch string) {
	if c != nil {
		c[branch]++
	}
}

// The branches the differential test must reach.
var lineBranches = []string{
	"take: granted, reserved for it",
	"take: granted, free and first in line",
	"take: refused, held or reserved for another",
	"take: refused, free but another is first",
	"take: fenced grant",
	"take: registered its attempt (L12)",
	"take: a late attempt, nothing registered (L12)",
	"take: granted, handed over to an earlier attempt of its own (L12)",
	"take: refused, handed over to a later attempt of its own (L12)",
	"head: dropped an expired entry",
	"head: emptied the line",
	"hand: reserved for the first in line",
	"hand: handed over to the first in line (L12)",
	"hand: a grant it cannot use, deleted (L12)",
	"hand: deleted, nobody in line, announced",
	"hand: deleted, nobody in line, silent",
	"release: not ours",
	"release: took its waiter out (L12)",
	"release: a free key passed on (L12)",
	"release: its waiter's reservation passed on (L12)",
	"hand: reserved for the undoing waiter itself (L12)",
	"leave: passed the reservation on",
	"leave: no reservation for it",
	"leave: put its successor in",
	"leave: passed on its value (L12)",
	"leave: a free key passed on (L12)",
	"leave: removed its grant (L12)",
	"claim: held, made to last its TTL (L12)",
	"claim: held, its longer expiry kept (L12)",
	"claim: reserved for it, passed on (L12)",
	"claim: a free key passed on (L12)",
	"claim: neither held nor reserved (L12)",
	"claim: put its successor in (L12)",
	"claim: removed its grant (L12)",
	"undo: not ours",
	"undo: new ticket, key handed on",
	"set: granted",
	"set: refused by a reservation",
	"set: refused by a lock",
	"expire: key",
	"expire: line",
	"expire: grants (L12)",
	"no rights: the line is empty",
}

// scriptClock is the node's clock as one command sees it. Redis 7.0
// expires keys against the time the script (or command) started: snap.
// Each TIME call inside a script reads the clock again (line.lua reads it
// up to twice), and SET PX and PEXPIRE count from the clock as it is when
// they run. In the interleaving tests all of them are one model time; the
// differential test tries every value the real run may have seen.
type scriptClock struct {
	snap  int64
	reads []int64 // the successive TIME reads; past the end, the last one again
	n     int     // reads done so far
}

// at is a clock that reads ms for everything: one instant of model time.
func at(ms int64) *scriptClock { return &scriptClock{snap: ms} }

// time is the script's next TIME read (now_ms in line_head.lua).
func (c *scriptClock) time() int64 {
	t := c.snap
	switch {
	case c.n < len(c.reads):
		t = c.reads[c.n]
	case len(c.reads) > 0:
		t = c.reads[len(c.reads)-1]
	}
	c.n++
	return t
}

// mstime is the base of an expiry set now (SET PX, PEXPIRE): the latest
// time the script has seen.
func (c *scriptClock) mstime() int64 {
	switch {
	case c.n == 0 || len(c.reads) == 0:
		return c.snap
	case c.n <= len(c.reads):
		return c.reads[c.n-1]
	}
	return c.reads[len(c.reads)-1]
}

func (n *lineNode) clone() lineNode {
	c := *n
	c.line = slices.Clone(n.line)
	c.grants = slices.Clone(n.grants)
	return c
}

// begin is the start of a command: Redis's lazy expiry, a key being gone
// once the time is past its expiry (now > when).
func (n *lineNode) begin(snap int64) {
	n.pxKey, n.lineSet, n.grantsSet, n.keySet = 0, lineWrite{}, lineWrite{}, lineWrite{}
	if n.key != "" && snap > n.keyExp {
		n.key = ""
		n.cov.hit("expire: key")
	}
	if n.line != nil && n.lineTTL && snap > n.lineExp {
		n.line = nil
		n.cov.hit("expire: line")
	}
	if n.grants != nil && n.grantsTTL && snap > n.grantsExp {
		n.grants = nil
		n.cov.hit("expire: grants (L12)")
	}
}

// entry returns the index of id's entry, or -1.
func (n *lineNode) entry(id string) int {
	i, ok := slices.BinarySearchFunc(n.line, id, func(e lineEntry, id string) int { return strings.Compare(e.id, id) })
	if !ok {
		return -1
	}
	return i
}

// hset is HSET line id "ticket:exp": a new hash has no expiry. The line is
// never written in place (clones share it).
func (n *lineNode) hset(e lineEntry) {
	if n.line == nil {
		n.lineTTL = false
	}
	i, found := slices.BinarySearchFunc(n.line, e.id, func(e lineEntry, id string) int { return strings.Compare(e.id, id) })
	line := make([]lineEntry, 0, len(n.line)+1)
	line = append(append(line, n.line[:i]...), e)
	if found {
		i++
	}
	n.line = append(line, n.line[i:]...)
}

// hdel is HDEL line id: the hash goes with its last field.
func (n *lineNode) hdel(id string) {
	if i := n.entry(id); i >= 0 {
		n.line = slices.Delete(slices.Clone(n.line), i, i+1)
		if len(n.line) == 0 {
			n.line = nil
		}
	}
}

// pexpire is PEXPIRE line 2*lifetime NX, and then GT when gt is set. On no
// hash it does nothing.
func (n *lineNode) pexpire(c *scriptClock, lifetime int64, gt bool) {
	if n.line != nil {
		hashExpire(c, lifetime, gt, &n.lineSet, &n.lineExp, &n.lineTTL)
	}
}

// hashExpire is PEXPIRE hash 2*lifetime NX (then GT, when gt is set) on a
// hash that exists, whose expiry is *exp when *ttl; set records it.
func hashExpire(c *scriptClock, lifetime int64, gt bool, set *lineWrite, exp *int64, ttl *bool) {
	d := 2 * lifetime
	*set = lineWrite{d: d, hadTTL: *ttl, was: *exp, gt: gt, base: c.mstime()}
	e := set.base + d
	switch {
	case !*ttl:
		*exp, *ttl = e, true
	case gt && e > *exp:
		*exp = e
	}
}

// grant returns id's field in G (L12).
func (n *lineNode) grant(id string) (string, bool) {
	i, ok := slices.BinarySearchFunc(n.grants, id, func(e grantEntry, id string) int { return strings.Compare(e.id, id) })
	if !ok {
		return "", false
	}
	return n.grants[i].g, true
}

// ghset is HSET grants id g: a new hash has no expiry. G is never written
// in place (clones share it).
func (n *lineNode) ghset(id, g string) {
	if n.grants == nil {
		n.grantsTTL = false
	}
	i, found := slices.BinarySearchFunc(n.grants, id, func(e grantEntry, id string) int { return strings.Compare(e.id, id) })
	grants := make([]grantEntry, 0, len(n.grants)+1)
	grants = append(append(grants, n.grants[:i]...), grantEntry{id, g})
	if found {
		i++
	}
	n.grants = append(grants, n.grants[i:]...)
}

// ghdel is HDEL grants id: the hash goes with its last field. It reports
// whether there was one.
func (n *lineNode) ghdel(id string) bool {
	i, ok := slices.BinarySearchFunc(n.grants, id, func(e grantEntry, id string) int { return strings.Compare(e.id, id) })
	if !ok {
		return false
	}
	n.grants = slices.Delete(slices.Clone(n.grants), i, i+1)
	if len(n.grants) == 0 {
		n.grants = nil
	}
	return true
}

// register is line.lua's register (L12): with a seq and a lease, HSET G id
// "seq:lease:v", then PEXPIRE G 2*lifetime NX and GT, as the line's. seq
// or lease "" is none (the argument absent): nothing is registered.
func (n *lineNode) register(c *scriptClock, id, value, seq, lease string, lifetime int64) bool {
	if seq == "" || lease == "" {
		return false
	}
	n.ghset(id, seq+":"+lease+":"+value)
	hashExpire(c, lifetime, true, &n.grantsSet, &n.grantsExp, &n.grantsTTL)
	return true
}

// head is line_head.lua's head(): it drops the entries whose expiry is not
// after now (HDEL, from G too; a hash goes with its last field) and returns the id
// with the smallest (ticket, id), or "". Without the rights to the line,
// the line is empty (L8).
func (n *lineNode) head(c *scriptClock) string {
	if n.noRights {
		n.cov.hit("no rights: the line is empty")
		return ""
	}
	if n.line == nil {
		return ""
	}
	now := c.time()
	if slices.ContainsFunc(n.line, func(e lineEntry) bool { return e.exp <= now }) {
		var kept []lineEntry // a new slice: clones share the old one
		for _, e := range n.line {
			if e.exp > now {
				kept = append(kept, e)
			} else {
				n.cov.hit("head: dropped an expired entry")
				n.ghdel(e.id)
			}
		}
		n.line = kept
		if kept == nil {
			n.cov.hit("head: emptied the line")
		}
	}
	best := -1
	for i, e := range n.line {
		if best < 0 || e.ticket < n.line[best].ticket || (e.ticket == n.line[best].ticket && e.id < n.line[best].id) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return n.line[best].id
}

// announcement is a PUBLISH of a script: on the channel named by the lock
// key and suffix, msg. The zero value is none.
type announcement struct{ suffix, msg string }

// clientChannel is line_head.lua's channel(), past the key and ':released:':
// a waiter's id up to its first '.', its client's channel id, or the whole
// id when it has none (a waiter of an older client, L10).
func clientChannel(id string) string {
	cid, _, _ := strings.Cut(id, ".")
	return cid
}

// splitGrant splits a field of G as hand() does (L12): seq up to the
// first ':', lease up to the second, the value after it (':' and all); ok
// is false without two ':'.
func splitGrant(g string) (seq, lease, value string, ok bool) {
	seq, rest, ok1 := strings.Cut(g, ":")
	lease, value, ok2 := strings.Cut(rest, ":")
	return seq, lease, value, ok1 && ok2
}

// pxOf is what SET ... PX takes from a script's string argument, from
// base: an integer as Redis reads one (string2ll: no '+', no leading
// zero, no space), positive, base + it not overflowing; ok false where SET
// answers an error.
func pxOf(s string, base int64) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] < '1' || digits[0] > '9' || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 || ms > math.MaxInt64-base {
		return 0, false
	}
	return ms, true
}

// hand is line_head.lua's hand(): when the first in line registered an
// attempt in G (L12), the key becomes the attempt's value for the lease
// it registered (SET PX lease), "id seq" is announced on its client's
// channel, and the head's entry and G's field stay (its claim, or its next
// attempt, takes them out; L3 ends them otherwise); otherwise a
// reservation for the first in line for reserve ms, announced with its id
// on its client's channel (L10); or, with nobody in line, DEL, announced
// to every waiter with '1' when announce is set. A field of G without two
// ':', or with a lease SET refuses, falls through to that DEL, the line
// and G untouched (the client never writes one). It returns what was
// published. self is the id of the waiter whose undo this is: first in
// line, it is reserved for, never handed its own attempt (L12). (force.lua,
// which passes no G, is not modelled.)
func (n *lineNode) hand(c *scriptClock, reserve int64, announce bool, self string) announcement {
	h := n.head(c)
	if h != "" {
		if h == self {
			n.cov.hit("hand: reserved for the undoing waiter itself (L12)")
		}
		if g, ok := n.grant(h); ok && h != self {
			seq, lease, v, ok := splitGrant(g)
			if px, valid := pxOf(lease, c.mstime()); ok && valid {
				n.key, n.keyExp, n.pxKey = v, c.mstime()+px, px
				n.cov.hit("hand: handed over to the first in line (L12)")
				return announcement{releasedSuffix + ":" + clientChannel(h), h + " " + seq}
			}
			n.cov.hit("hand: a grant it cannot use, deleted (L12)")
		} else {
			n.key, n.keyExp, n.pxKey = "~r:"+h, c.mstime()+reserve, reserve
			n.cov.hit("hand: reserved for the first in line")
			return announcement{releasedSuffix + ":" + clientChannel(h), h}
		}
	}
	n.key = ""
	if announce {
		if h == "" {
			n.cov.hit("hand: deleted, nobody in line, announced")
		}
		return announcement{releasedSuffix, "1"}
	}
	if h == "" {
		n.cov.hit("hand: deleted, nobody in line, silent")
	}
	return announcement{}
}

// luaNumber is Lua 5.1's tonumber of a string, as far as the model knows
// it: a decimal number, blanks around it allowed; ok false for nil. (Hex
// and strtod's other forms are not modelled: no seq is written so.)
func luaNumber(s string) (float64, bool) {
	t := strings.Trim(s, " \t\n\v\f\r")
	if t == "" || strings.Trim(t, "+-.0123456789eE") != "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(t, 64)
	return f, err == nil
}

// take is line.lua's take (L12): it first reads the attempt the waiter
// registered in G, "seq:lease:value" (HGET; none without the rights to
// G, L8): the take is newer when it has a seq, and it is above that one's
// (a seq Lua cannot read counts as 0), or there is none. It (re)enters the
// line, registering the attempt (seq, lease and value) in G when it is
// newer and has a lease; then it takes the key if it is reserved for id,
// or holds the value G named and the take is newer (handed over to an
// earlier attempt of its own), or is free with id first in line. It
// returns 1 (or the counter, fenced) when granted, 0 when not.
func (n *lineNode) take(c *scriptClock, id, value string, ttl, ticket, lifetime int64, fence bool, seq, lease string) int64 {
	n.begin(c.snap)
	num, newer := luaNumber(seq)
	handed, hasHanded := "", false
	if g, ok := n.grant(id); ok && !n.noRights {
		if gs, _, gv, ok := splitGrant(g); ok {
			old, _ := luaNumber(gs) // or 0
			newer = newer && num > old
			handed, hasHanded = gv, true
			if !newer && seq != "" {
				n.cov.hit("take: a late attempt, nothing registered (L12)")
			}
		}
	}
	if !n.noRights {
		n.hset(lineEntry{id: id, ticket: ticket, exp: c.time() + lifetime})
		n.pexpire(c, lifetime, true)
		if newer && n.register(c, id, value, seq, lease, lifetime) {
			n.cov.hit("take: registered its attempt (L12)")
		}
	}
	// GET on a missing key is false, never '', and never handed.
	mine := n.key == "~r:"+id
	switch {
	case mine:
		n.cov.hit("take: granted, reserved for it")
	case hasHanded && n.key != "" && n.key == handed && newer:
		mine = true
		n.cov.hit("take: granted, handed over to an earlier attempt of its own (L12)")
	case hasHanded && n.key != "" && n.key == handed && seq != "":
		n.cov.hit("take: refused, handed over to a later attempt of its own (L12)")
	case n.key == "":
		h := n.head(c) // "" when nobody is in line, or it cannot be read (L8)
		mine = h == "" || h == id
		if mine {
			n.cov.hit("take: granted, free and first in line")
		} else {
			n.cov.hit("take: refused, free but another is first")
		}
	default:
		n.cov.hit("take: refused, held or reserved for another")
	}
	if !mine {
		return 0
	}
	if !n.noRights { // L4: served here, it leaves the line (and G) here
		n.hdel(id)
		n.ghdel(id)
	}
	n.key, n.keyExp, n.pxKey = value, c.mstime()+ttl, ttl
	if fence {
		n.counter++
		n.cov.hit("take: fenced grant")
		return n.counter
	}
	return 1
}

// successor is the waiter a leave (or a claim) puts in line in its place
// (L9).
type successor struct {
	id               string
	ticket, lifetime int64
}

// out is line.lua's out(): id's entry leaves the line and G, and the
// successor's comes into the line, when there is one. op names the
// branches.
func (n *lineNode) out(c *scriptClock, op, id string, next *successor) {
	if n.noRights {
		return
	}
	n.hdel(id)
	if n.ghdel(id) {
		n.cov.hit(op + ": removed its grant (L12)")
	}
	if next != nil {
		n.hset(lineEntry{id: next.id, ticket: next.ticket, exp: c.time() + next.lifetime})
		n.pexpire(c, next.lifetime, true)
		if op == "leave" {
			n.cov.hit("leave: put its successor in")
		} else {
			n.cov.hit(op + ": put its successor in (L12)")
		}
	}
}

// leave is line.lua's leave: the entry goes from the line and G (and the
// successor's comes, when there is one), and the key passes to the first
// in line when it is reserved for id, or holds value, not "" (a waiter that
// gave up passes on a lock handed over to it, L12), or is free (silently
// when nobody is in line, L12). It returns 1 and what was published.
func (n *lineNode) leave(c *scriptClock, id, value string, reserve int64, next *successor) (reply int64, pub announcement) {
	n.begin(c.snap)
	n.out(c, "leave", id, next)
	switch {
	case n.key == "~r:"+id:
		n.cov.hit("leave: passed the reservation on")
		return 1, n.hand(c, reserve, true, "")
	case value != "" && n.key == value:
		n.cov.hit("leave: passed on its value (L12)")
		return 1, n.hand(c, reserve, true, "")
	case n.key == "":
		n.cov.hit("leave: a free key passed on (L12)")
		return 1, n.hand(c, reserve, false, "")
	}
	n.cov.hit("leave: no reservation for it")
	return 1, announcement{}
}

// claim is line.lua's claim (L12): the entry goes from the line and G (and
// the successor's comes), as leave's; where the key holds value it lasts
// ttl from now, never less than it had (PEXPIRE GT), and the reply is 1;
// where it is reserved for id, it passes to the first in line, announced;
// where it is free, too, silently when nobody is in line; the reply is 0
// but where it holds value. It returns what was published.
func (n *lineNode) claim(c *scriptClock, id, value string, ttl, reserve int64, next *successor) (reply int64, pub announcement) {
	n.begin(c.snap)
	n.out(c, "claim", id, next)
	switch {
	case n.key != "" && n.key == value:
		n.keySet = lineWrite{d: ttl, hadTTL: true, was: n.keyExp, gt: true, base: c.mstime()}
		if exp := n.keySet.base + ttl; exp > n.keyExp {
			n.keyExp = exp
			n.cov.hit("claim: held, made to last its TTL (L12)")
		} else {
			n.cov.hit("claim: held, its longer expiry kept (L12)")
		}
		return 1, announcement{}
	case n.key == "~r:"+id:
		n.cov.hit("claim: reserved for it, passed on (L12)")
		return 0, n.hand(c, reserve, true, "")
	case n.key == "":
		n.cov.hit("claim: a free key passed on (L12)")
		return 0, n.hand(c, reserve, false, "")
	}
	n.cov.hit("claim: neither held nor reserved (L12)")
	return 0, announcement{}
}

// undo is line.lua's undo (A8, L7): where the key holds value, the entry
// takes ticket (registering nothing in G, L12), and the key passes to the
// first in line, silently. It returns 1 when undone, 0 when not ours, and
// what was published.
func (n *lineNode) undo(c *scriptClock, id, value string, ticket, lifetime, reserve int64) (reply int64, pub announcement) {
	n.begin(c.snap)
	if value == "" || n.key != value {
		n.cov.hit("undo: not ours")
		return 0, announcement{}
	}
	if !n.noRights {
		n.hset(lineEntry{id: id, ticket: ticket, exp: c.time() + lifetime})
		n.pexpire(c, lifetime, true)
	}
	n.cov.hit("undo: new ticket, key handed on")
	return 1, n.hand(c, reserve, false, id)
}

// release is release.lua: with waiter, the id of the waiter that took the
// lock in line, its entry and G's field go first (L4, L12); when the key
// holds value, hand it on; when it is free, or reserved for waiter, and
// waiter given, too (as a leave does). It returns 1 when released, 0 when not ours, and what was
// published.
func (n *lineNode) release(c *scriptClock, value string, announce bool, reserve int64, waiter string) (reply int64, pub announcement) {
	n.begin(c.snap)
	if waiter != "" && !n.noRights {
		n.hdel(waiter)
		n.ghdel(waiter)
		n.cov.hit("release: took its waiter out (L12)")
	}
	if value == "" || n.key != value { // GET on a missing key is false, never ''
		if waiter != "" && n.key == "" {
			n.cov.hit("release: a free key passed on (L12)")
			return 0, n.hand(c, reserve, false, "")
		}
		if waiter != "" && n.key == "~r:"+waiter {
			n.cov.hit("release: its waiter's reservation passed on (L12)")
			return 0, n.hand(c, reserve, true, "")
		}
		n.cov.hit("release: not ours")
		return 0, announcement{}
	}
	return 1, n.hand(c, reserve, announce, "")
}

// setNX is the plain acquisition: SET NX PX GET (or acquire.lua, fenced).
// It returns whether it was granted and, when not, the value it found.
func (n *lineNode) setNX(c *scriptClock, value string, ttl int64) (granted bool, found string) {
	n.begin(c.snap)
	if n.key != "" {
		if strings.HasPrefix(n.key, "~r:") {
			n.cov.hit("set: refused by a reservation")
		} else {
			n.cov.hit("set: refused by a lock")
		}
		return false, n.key
	}
	n.key, n.keyExp, n.pxKey = value, c.mstime()+ttl, ttl
	n.cov.hit("set: granted")
	return true, ""
}

// evalReply is what one command answered, in redigo's types, and what it
// published on the release channels.
type evalReply struct {
	v   any // int64, nil, or []byte (SET GET's old value)
	pub announcement
}

// eval runs on the model the command the client sends (cmd and args as
// handed to the pipe: EVALSHA with a script's hash, or EVAL with its
// source, or SET NX PX GET), decoding its arguments as the scripts do; or
// HSET of a field of G, which the differential test writes as no client
// does (L12). It fails on a layout it does not know.
func (n *lineNode) eval(c *scriptClock, cmd string, args []any) (evalReply, error) {
	s := make([]string, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			s[i] = a
		case []byte:
			s[i] = string(a)
		case int:
			s[i] = strconv.Itoa(a)
		case int64:
			s[i] = strconv.FormatInt(a, 10)
		case uint64: // a seq (L12)
			s[i] = strconv.FormatUint(a, 10)
		default:
			return evalReply{}, fmt.Errorf("argument %d: unexpected %T", i, a)
		}
	}
	var bad error
	num := func(v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && bad == nil {
			bad = fmt.Errorf("%q: not an integer", v)
		}
		return n
	}
	if cmd == "SET" {
		if len(s) != 6 || s[2] != "NX" || s[3] != "PX" || s[5] != "GET" {
			return evalReply{}, fmt.Errorf("SET %q: not SET key value NX PX ttl GET", s)
		}
		ttl := num(s[4])
		if bad != nil {
			return evalReply{}, bad
		}
		if ok, found := n.setNX(c, s[1], ttl); !ok {
			return evalReply{v: []byte(found)}, nil
		}
		return evalReply{}, nil
	}
	if cmd == "HSET" {
		if len(s) < 3 || len(s)%2 != 1 || !strings.HasSuffix(s[0], ":line"+grantsSuffix) {
			return evalReply{}, fmt.Errorf("HSET %q: not HSET grants field value...", s)
		}
		n.begin(c.snap)
		added := int64(0)
		for i := 1; i < len(s); i += 2 {
			if _, had := n.grant(s[i]); !had {
				added++
			}
			n.ghset(s[i], s[i+1])
		}
		return evalReply{v: added}, nil
	}
	if cmd != "EVALSHA" && cmd != "EVAL" || len(s) < 2 {
		return evalReply{}, fmt.Errorf("command %s: not a script", cmd)
	}
	var script string
	switch s[0] {
	case lineHash, lineSrc:
		script = "line"
	case releaseHash, releaseSrc:
		script = "release"
	case acquireHash, acquireSrc:
		script = "acquire"
	default:
		return evalReply{}, fmt.Errorf("script %.20q: not one the model knows", s[0])
	}
	keys := int(num(s[1]))
	if bad != nil || len(s) < 2+keys || keys < 2 {
		return evalReply{}, fmt.Errorf("%s with %q keys: too few", script, s[1])
	}
	// The keys of one name: L, then L..':line' or L..':fence' (and both),
	// and G, L..':line:grants' (L12).
	want := map[string][]string{
		"line":    {s[2], s[2] + ":line", s[2] + ":fence", s[2] + ":line:grants"},
		"release": {s[2], s[2] + ":line", s[2] + ":line:grants"},
		"acquire": {s[2], s[2] + ":fence"},
	}[script]
	if !slices.Equal(s[2:2+keys], want) {
		return evalReply{}, fmt.Errorf("%s with keys %q, want %q", script, s[2:2+keys], want)
	}
	argv := s[2+keys:]
	// seq and lease are the optional ARGV of a take that number it and
	// give its lease (L12): "" when absent. The scripts would take an empty
	// one as present; the client never sends one, nor one without the
	// other, and the model does not know them.
	seqLease := func(i int) (seq, lease string, ok bool) {
		if len(argv) <= i {
			return "", "", true
		}
		return argv[i], argv[i+1], argv[i] != "" && argv[i+1] != ""
	}
	// next is the optional successor from ARGV index i (L9).
	next := func(i int) *successor {
		if len(argv) <= i {
			return nil
		}
		return &successor{argv[i], num(argv[i+1]), num(argv[i+2])}
	}
	var r evalReply
	switch {
	case script == "line" && (len(argv) == 7 || len(argv) == 9) && argv[0] == "take":
		// take id value ttl ticket lifetime fence [seq lease]
		ttl, ticket, life := num(argv[3]), num(argv[4]), num(argv[5])
		sq, lease, ok := seqLease(7)
		if bad == nil && ok {
			r.v = n.take(c, argv[1], argv[2], ttl, ticket, life, argv[6] == "1", sq, lease)
		} else if bad == nil {
			return evalReply{}, fmt.Errorf("take with an empty seq or lease: not a layout the model knows")
		}
	case script == "line" && (len(argv) == 4 || len(argv) == 7) && argv[0] == "leave":
		// leave id reserve value [next-id next-ticket next-lifetime]
		nx, reserve := next(4), num(argv[2])
		if bad == nil {
			r.v, r.pub = n.leave(c, argv[1], argv[3], reserve, nx)
		}
	case script == "line" && (len(argv) == 5 || len(argv) == 8) && argv[0] == "claim":
		// claim id value ttl reserve [next-id next-ticket next-lifetime]
		nx, ttl, reserve := next(5), num(argv[3]), num(argv[4])
		if bad == nil {
			r.v, r.pub = n.claim(c, argv[1], argv[2], ttl, reserve, nx)
		}
	case script == "line" && len(argv) == 6 && argv[0] == "undo":
		// undo id value ticket lifetime reserve
		ticket, life, reserve := num(argv[3]), num(argv[4]), num(argv[5])
		if bad == nil {
			r.v, r.pub = n.undo(c, argv[1], argv[2], ticket, life, reserve)
		}
	case script == "release" && (len(argv) == 3 || len(argv) == 4):
		// value announce reserve [waiter]
		reserve, waiter := num(argv[2]), ""
		if len(argv) == 4 {
			waiter = argv[3]
		}
		if bad == nil {
			r.v, r.pub = n.release(c, argv[0], argv[1] == "1", reserve, waiter)
		}
	case script == "acquire" && len(argv) == 3:
		// value ttl fence
		ttl := num(argv[1])
		if bad != nil {
			break
		}
		ok, _ := n.setNX(c, argv[0], ttl)
		switch {
		case !ok:
			r.v = int64(0)
		case argv[2] == "1":
			n.counter++
			r.v = n.counter
		default:
			r.v = int64(1)
		}
	default:
		return evalReply{}, fmt.Errorf("%s with ARGV %q: not a layout the model knows", script, argv)
	}
	return r, bad
}

// entries renders the line as HGETALL would show it: id -> "ticket:exp".
func (n *lineNode) entries() map[string]string {
	m := make(map[string]string, len(n.line))
	for _, e := range n.line {
		m[e.id] = strconv.FormatInt(e.ticket, 10) + ":" + strconv.FormatInt(e.exp, 10)
	}
	return m
}

// grantsMap renders G as HGETALL would show it: id -> "seq:lease:value".
func (n *lineNode) grantsMap() map[string]string {
	m := make(map[string]string, len(n.grants))
	for _, e := range n.grants {
		m[e.id] = e.g
	}
	return m
}

func (n *lineNode) String() string {
	var b strings.Builder
	if n.key == "" {
		b.WriteString("key free")
	} else {
		fmt.Fprintf(&b, "key %q until %d", n.key, n.keyExp)
	}
	if n.line != nil {
		if n.lineTTL {
			fmt.Fprintf(&b, ", line (until %d):", n.lineExp)
		} else {
			b.WriteString(", line (no expiry):")
		}
		for _, e := range slices.SortedFunc(slices.Values(n.line), func(a, b lineEntry) int {
			return cmp.Or(cmp.Compare(a.ticket, b.ticket), strings.Compare(a.id, b.id))
		}) {
			fmt.Fprintf(&b, " %s(ticket %d, until %d)", e.id, e.ticket, e.exp)
		}
	}
	if n.grants != nil {
		if n.grantsTTL {
			fmt.Fprintf(&b, ", grants (until %d):", n.grantsExp)
		} else {
			b.WriteString(", grants (no expiry):")
		}
		for _, e := range n.grants {
			fmt.Fprintf(&b, " %s=%q", e.id, e.g)
		}
	}
	if n.counter != 0 {
		fmt.Fprintf(&b, ", counter %d", n.counter)
	}
	return b.String()
}

// L1, L2, L4, L7, L9: the model's own rules, on a hand-written sequence:
// the line orders by (ticket, id) whatever the arrival, a release reserves
// for the first, only that waiter takes the reservation, leaving passes it
// on (and puts a successor in), an undo sends its waiter to the back with
// a new ticket, and an expired entry is dropped the next time the line is
// read.
func TestLineModelHandsTheKeyDownTheLine(t *testing.T) {
	var n lineNode
	const ttl, life, reserve = 10_000, 200, 200
	if ok, _ := n.setNX(at(0), "holder", ttl); !ok {
		t.Fatal("the first SET NX was refused")
	}
	// Arrivals out of ticket order, and a tie broken by the id.
	for _, w := range []struct {
		id     string
		ticket int64
	}{{"wC", 30}, {"wB", 20}, {"wA", 20}} {
		if got := n.take(at(1), w.id, "v"+w.id, ttl, w.ticket, life, false, "", ""); got != 0 {
			t.Fatalf("%s took a held key", w.id)
		}
	}
	if got, pub := n.release(at(2), "holder", true, reserve, ""); got != 1 || pub != (announcement{":released:wA", "wA"}) || n.key != "~r:wA" {
		t.Fatalf("release = %d, published %q, key %q; want 1, wA on its own channel, ~r:wA", got, pub, n.key)
	}
	if ok, _ := n.setNX(at(3), "barger", ttl); ok {
		t.Fatal("SET NX took a reservation (L5, L2)")
	}
	if got := n.take(at(3), "wB", "vwB", ttl, 20, life, false, "", ""); got != 0 {
		t.Fatal("wB took the reservation for wA")
	}
	// wA takes it, fails elsewhere, and undoes it going to the back (L7):
	// the key goes to wB.
	if got := n.take(at(4), "wA", "vwA", ttl, 20, life, false, "", ""); got != 1 {
		t.Fatal("wA could not take its reservation")
	}
	if got, pub := n.undo(at(4), "wA", "vwA", 40, life, reserve); got != 1 || pub.msg != "wB" || n.key != "~r:wB" {
		t.Fatalf("undo = %d, published %q, key %q; want 1, wB, ~r:wB", got, pub, n.key)
	}
	// wB gives up, putting its client's next waiter wD in with ticket 25
	// (L9): the reservation passes to wD, ahead of wC and wA.
	if _, pub := n.leave(at(5), "wB", "", reserve, &successor{"wD", 25, life}); pub.msg != "wD" || n.key != "~r:wD" {
		t.Fatalf("leave published %q, key %q; want wD, ~r:wD", pub, n.key)
	}
	if got := n.take(at(6), "wD", "vwD", ttl, 25, life, false, "", ""); got != 1 || n.key != "vwD" {
		t.Fatalf("wD's take = %d, key %q", got, n.key)
	}
	// wC and wA stop attempting; wD leaves and releases after their
	// entries expired: nobody is in line, the key is deleted and '1'
	// announced.
	n.leave(at(7), "wD", "", reserve, nil)
	if got, pub := n.release(at(4+life), "vwD", true, reserve, ""); got != 1 || pub != (announcement{":released", "1"}) || n.key != "" || n.line != nil {
		t.Fatalf("release after the last entry expired = %d, published %q, node %v", got, pub, &n)
	}
}

// L12 on the model, on a hand-written sequence: a release hands the lock
// over to the first in line when it registered an attempt (a take with a
// seq and a lease), for that lease (not the releaser's reservation time),
// announcing its id and that seq on its client's channel; its entry and
// its field of G stay; a first in line that registered nothing gets a
// reservation (L2); a take of the same waiter that arrives late (a seq not
// above the one registered) neither registers nor takes the key; its next
// attempt takes it as its own, out of the line and G; a claim makes it
// last its TTL, never less, and takes the waiter out of the line and G; an
// entry that expired leaves the line when it is read, and G with it; an
// undo registers nothing, so it leaves its waiter a reservation, not a
// hand-over; a field of G that is not "seq:lease:value" with a lease SET
// takes (never written by a client) hands nothing over: the key is
// deleted.
func TestLineModelHandsTheLockOver(t *testing.T) {
	var n lineNode
	const ttl, life, reserve, lease = 10_000, 200, 200, 60
	if ok, _ := n.setNX(at(0), "h", ttl); !ok {
		t.Fatal("the first SET NX was refused")
	}
	n.take(at(1), "wA", "vA1", ttl, 20, life, false, "1", "60")
	n.take(at(1), "wK.B", "vB", ttl, 10, life, false, "", "") // first, registered nothing
	if g, ok := n.grant("wA"); !ok || g != "1:60:vA1" || n.grantsExp != 1+2*life {
		t.Fatalf("wA's take registered %q (%v); node %v", g, ok, &n)
	}
	if _, ok := n.grant("wK.B"); ok {
		t.Fatalf("a take without seq and lease registered: %v", &n)
	}
	if _, pub := n.release(at(2), "h", true, reserve, ""); n.key != "~r:wK.B" || n.keyExp != 2+reserve || pub != (announcement{":released:wK", "wK.B"}) {
		t.Fatalf("release published %v; node %v; want a reservation for wK.B (L2)", pub, &n)
	}
	// wK.B gives up: its reservation passes to wA, which registered vA1 with
	// a lease of 60 ms: the key holds vA1 for those 60 ms; wA stays in line
	// and G.
	if _, pub := n.leave(at(3), "wK.B", "vB", reserve, nil); n.key != "vA1" || n.keyExp != 3+lease || pub != (announcement{":released:wA", "wA 1"}) {
		t.Fatalf("leave published %v; node %v; want the lock handed over to wA with seq 1 for its lease", pub, &n)
	}
	if g, _ := n.grant("wA"); n.entry("wA") < 0 || g != "1:60:vA1" {
		t.Fatalf("wA left the line or G with the hand-over: %v", &n)
	}
	// A take of wA that arrives late (seq 1 again, or none) registers
	// nothing and does not take the key, whatever its value.
	for _, late := range []struct{ value, seq, lease string }{{"vA0", "1", "60"}, {"vA1", "1", "60"}, {"vA1", "", ""}} {
		m := n.clone()
		if m.take(at(4), "wA", late.value, ttl, 20, life, false, late.seq, late.lease) != 0 || m.key != "vA1" || m.keyExp != 3+lease {
			t.Fatalf("a late take %v took the key handed over to a later attempt: %v", late, &m)
		}
		if g, _ := m.grant("wA"); g != "1:60:vA1" {
			t.Fatalf("a late take %v registered: %v", late, &m)
		}
	}
	// The waiter's claim: the key lasts its TTL, never less, and wA is out
	// of the line and G.
	m := n.clone()
	if got, pub := m.claim(at(4), "wA", "vA1", ttl, reserve, nil); got != 1 || m.keyExp != 4+ttl || pub != (announcement{}) || m.line != nil || m.grants != nil {
		t.Fatalf("wA's claim = %d, published %v; node %v", got, pub, &m)
	}
	if got, _ := m.claim(at(5), "wA", "vA1", 5, reserve, nil); got != 1 || m.keyExp != 4+ttl {
		t.Fatalf("a claim for less = %d; node %v: the expiry must not move earlier (PEXPIRE GT)", got, &m)
	}
	// Or its next attempt, seq 2, with a value of its own (A1): it takes the
	// key handed over to attempt 1 as its own, for its TTL, out of the line
	// and G (L4).
	if got := n.take(at(4), "wA", "vA2", ttl, 20, life, false, "2", "60"); got != 1 || n.key != "vA2" || n.keyExp != 4+ttl || n.line != nil || n.grants != nil {
		t.Fatalf("wA's next attempt on the key handed over = %d; node %v", got, &n)
	}
	// wC registers, and is handed the lock at wA's release, for its own
	// lease; it claims it.
	n.take(at(6), "wC", "vC", ttl, 30, life, false, "3", "80")
	if _, pub := n.release(at(7), "vA2", true, reserve, ""); n.key != "vC" || n.keyExp != 7+80 || pub.msg != "wC 3" {
		t.Fatalf("release published %v; node %v", pub, &n)
	}
	if got, _ := n.claim(at(8), "wC", "vC", ttl, reserve, nil); got != 1 || n.keyExp != 8+ttl || n.line != nil || n.grants != nil {
		t.Fatalf("wC's claim = %d; node %v", got, &n)
	}
	// wD registers and stops: its entry expires, and the release that reads
	// the line drops it there, and its attempt from G.
	n.take(at(9), "wD", "vD", ttl, 40, 5, false, "4", "60")
	if got, pub := n.release(at(14), "vC", true, reserve, ""); got != 1 || n.key != "" || n.line != nil || pub != (announcement{releasedSuffix, "1"}) {
		t.Fatalf("release = %d, published %v; node %v", got, pub, &n)
	}
	if g, ok := n.grant("wD"); ok {
		t.Fatalf("G kept wD's attempt %q after its entry expired: %v", g, &n)
	}
	// wE takes the free key (the grant takes it out of the line and G),
	// fails elsewhere, and undoes it: it is back in line, first, but
	// registered nothing, so the key is reserved for it (L2), silently to
	// others, announced to it.
	if got := n.take(at(21), "wE", "vE", ttl, 50, life, false, "5", "60"); got != 1 || n.grants != nil {
		t.Fatalf("wE's take of the free key = %d; node %v", got, &n)
	}
	if got, pub := n.undo(at(22), "wE", "vE", 50, life, reserve); got != 1 || n.key != "~r:wE" || n.keyExp != 22+reserve || pub != (announcement{":released:wE", "wE"}) || n.grants != nil {
		t.Fatalf("undo = %d, published %v; node %v; want a reservation for wE, nothing registered", got, pub, &n)
	}
	// It gives up: the reservation goes to nobody.
	if _, pub := n.leave(at(23), "wE", "vE", reserve, nil); n.key != "" || pub != (announcement{releasedSuffix, "1"}) {
		t.Fatalf("leave published %v; node %v", pub, &n)
	}
	// A field of G without a lease (two ':'), or with one SET refuses:
	// the release deletes the key, announced to every waiter, and leaves
	// the line and G as they were.
	for _, g := range []string{"6:vF", "6:0:vF", "6::vF", "6:+9:vF", "6:09:vF"} {
		m := lineNode{key: "h", keyExp: 100}
		m.hset(lineEntry{id: "wF", ticket: 60, exp: 100})
		m.ghset("wF", g)
		if got, pub := m.release(at(24), "h", true, reserve, ""); got != 1 || m.key != "" || pub != (announcement{releasedSuffix, "1"}) || m.entry("wF") < 0 || m.grants == nil {
			t.Fatalf("G field %q: release = %d, published %v; node %v", g, got, pub, &m)
		}
	}
	// The value is what follows the second ':', ':' and all.
	m = lineNode{key: "h", keyExp: 100}
	m.hset(lineEntry{id: "wF", ticket: 60, exp: 100})
	m.ghset("wF", "6:9:v:F")
	if _, pub := m.release(at(24), "h", true, reserve, ""); m.key != "v:F" || m.keyExp != 24+9 || pub.msg != "wF 6" {
		t.Fatalf("G field \"6:9:v:F\": published %v; node %v", pub, &m)
	}
}

// The small world of the node-level tests: three waiters, the time now.
const (
	caseNow, caseTTL, caseLife, caseReserve, caseBack = 100, 50, 10, 40, 30
)

var (
	caseIDs     = []string{"w1", "w2", "w3"}
	caseTickets = map[string]int64{"w1": 10, "w2": 20, "w3": 20} // w2 and w3 tie: the id decides
)

// caseValue is the value of the attempt waiter id registered in a state
// (seq caseSeq, lease caseLease): what a hand-over of it gives the waiter,
// and what its claim, or its leave when it gives up, gives back (L12); "n"
// is a plain SET NX's.
func caseValue(id string) string { return "n" + id }

// caseTakeValue is the value of waiter id's attempt in the commands: a
// take's, another attempt than the one registered (A1).
func caseTakeValue(id string) string { return "t" + id }

// The seq and lease of the attempt registered in a state (L12); the
// lease of the takes with a seq (a later one, or a late one): both leases
// unlike the reservation's.
const (
	caseSeq, caseLease                       = "7", "60"
	caseTakeLease, caseLaterSeq, caseLateSeq = "70", "9", "5"
)

// Kinds of the node-level commands.
const (
	opTake = iota
	opLeave
	opUndo
	opClaim
	opRelease
	opSet
)

// nodeOp is one command of the node-level tests; it changes the live line
// and G as entries says.
type nodeOp struct {
	desc  string
	kind  int
	run   func(n *lineNode) (reply int64, pub announcement)
	id    string // the waiter of a take, an undo, a leave or a claim
	value string // the value a release, an undo or a leave (L12) gives back
	// entries changes the live line m and G g from before to after, but
	// for a hand-over (L12); ours: the undo was ours; granted: the take was.
	entries func(m map[string]int64, g map[string]string, ours, granted bool)
	seq     string // a take's seq (L12); "" for none
}

// nodeCases returns every node state of the small world (with and without
// the rights to the line) and every command.
func nodeCases() ([]lineNode, []nodeOp) {
	const now, ttl, life, reserve, back = caseNow, caseTTL, caseLife, caseReserve, caseBack
	ids, tickets := caseIDs, caseTickets
	var keys []lineNode
	keys = append(keys, lineNode{})
	// "nw1": a lock handed over to w1 (L12).
	for _, k := range []string{"v", caseValue("w1"), "~r:w1", "~r:w2", "~r:w3"} {
		for _, exp := range []int64{now - 1, now, now + 100} {
			keys = append(keys, lineNode{key: k, keyExp: exp})
		}
	}
	var states []lineNode
	for _, noRights := range []bool{false, true} {
		for _, k := range keys {
			for mask := range 64 { // two bits per waiter: absent, expired, at the edge (expired too), alive
				for gmask := range 8 { // one bit per waiter: a value registered in G (L12), whatever its entry
					n := k
					n.noRights = noRights
					for j, id := range ids {
						switch mask >> (2 * j) & 3 {
						case 1:
							n.line = append(n.line, lineEntry{id, tickets[id], now - 5})
						case 2:
							n.line = append(n.line, lineEntry{id, tickets[id], now})
						case 3:
							n.line = append(n.line, lineEntry{id, tickets[id], now + 3})
						}
						if gmask>>j&1 == 1 {
							n.grants = append(n.grants, grantEntry{id, caseSeq + ":" + caseLease + ":" + caseValue(id)})
						}
					}
					if n.line != nil {
						n.lineExp, n.lineTTL = now+50, true
					}
					if n.grants != nil {
						n.grantsExp, n.grantsTTL = now+50, true
					}
					states = append(states, n)
				}
			}
		}
	}
	type op = nodeOp
	noChange := func(map[string]int64, map[string]string, bool, bool) {}
	var ops []op
	for _, id := range ids {
		v := caseValue(id)
		gone := func(m map[string]int64, g map[string]string, _, _ bool) { delete(m, id); delete(g, id) }
		// Its takes: without a seq (fenced, or a client from before L12),
		// with a seq above the one a state registers, or below it (an
		// attempt that arrives late); each registers its attempt where it
		// is newer than the one registered, or none is (L12).
		for _, sq := range []string{"", caseLaterSeq, caseLateSeq} {
			lease, desc := "", "take "+id
			if sq != "" {
				lease, desc = caseTakeLease, desc+" seq "+sq+" lease "+caseTakeLease
			}
			ops = append(ops, op{desc: desc, kind: opTake, id: id, seq: sq,
				run: func(n *lineNode) (int64, announcement) {
					return n.take(at(now), id, caseTakeValue(id), ttl, tickets[id], life, false, sq, lease), announcement{}
				},
				entries: func(m map[string]int64, g map[string]string, _, granted bool) {
					switch {
					case granted: // L4: served here, out of the line (and G) here
						delete(m, id)
						delete(g, id)
					case newerTake(g[id], sq):
						m[id] = tickets[id]
						g[id] = sq + ":" + lease + ":" + caseTakeValue(id)
					default:
						m[id] = tickets[id]
					}
				}})
		}
		ops = append(ops,
			op{"leave " + id, opLeave, func(n *lineNode) (int64, announcement) { return n.leave(at(now), id, "", reserve, nil) }, id, "", gone, ""},
			op{"leave " + id + " giving up " + v, opLeave, func(n *lineNode) (int64, announcement) { return n.leave(at(now), id, v, reserve, nil) }, id, v, gone, ""},
			op{"claim " + v + " " + id, opClaim, func(n *lineNode) (int64, announcement) { return n.claim(at(now), id, v, ttl, reserve, nil) }, id, "", gone, ""},
			op{"undo v " + id, opUndo, func(n *lineNode) (int64, announcement) { return n.undo(at(now), id, "v", back, life, reserve) }, id, "v",
				func(m map[string]int64, _ map[string]string, ours, _ bool) {
					if ours { // in line again, registering nothing (L12)
						m[id] = back
					}
				}, ""},
			op{"undo x " + id, opUndo, func(n *lineNode) (int64, announcement) { return n.undo(at(now), id, "x", back, life, reserve) }, id, "x", noChange, ""})
		// Its Unlock, of the lock it took in line (L12): the lock's value
		// or its own attempt's, or another.
		for _, rv := range []string{"v", v, "x"} {
			ops = append(ops, op{"release " + rv + " by " + id, opRelease, func(n *lineNode) (int64, announcement) {
				return n.release(at(now), rv, true, reserve, id)
			}, id, rv, gone, ""})
		}
		for _, next := range ids {
			if next != id {
				ops = append(ops, op{"leave " + id + " for " + next, opLeave, func(n *lineNode) (int64, announcement) {
					return n.leave(at(now), id, "", reserve, &successor{next, tickets[next], life})
				}, id, "", func(m map[string]int64, g map[string]string, _, _ bool) {
					delete(m, id)
					delete(g, id)
					m[next] = tickets[next]
				}, ""})
			}
		}
	}
	ops = append(ops,
		op{"release v, announced", opRelease, func(n *lineNode) (int64, announcement) { return n.release(at(now), "v", true, reserve, "") }, "", "v", noChange, ""},
		op{"release v, silent", opRelease, func(n *lineNode) (int64, announcement) { return n.release(at(now), "v", false, reserve, "") }, "", "v", noChange, ""},
		op{"release x", opRelease, func(n *lineNode) (int64, announcement) { return n.release(at(now), "x", true, reserve, "") }, "", "x", noChange, ""},
		op{"set NX", opSet, func(n *lineNode) (int64, announcement) {
			if ok, _ := n.setNX(at(now), "n", ttl); ok {
				return 1, announcement{}
			}
			return 0, announcement{}
		}, "", "", noChange, ""},
	)
	return states, ops
}

// newerTake reports whether a take with seq (none: "") is newer than the
// attempt g registered in G (none: ""), as line.lua take reads them (L12).
func newerTake(g, seq string) bool {
	num, ok := luaNumber(seq)
	if gs, _, _, sep2 := splitGrant(g); ok && sep2 {
		old, _ := luaNumber(gs)
		return num > old
	}
	return ok
}

// writes returns the value a granted take or SET NX writes.
func (o *nodeOp) writes() string {
	switch o.kind {
	case opTake:
		return caseTakeValue(o.id)
	case opSet:
		return "n"
	}
	return ""
}

// L2, L3, L4, L7, L9, L12 at one node, exhaustively over a small world:
// every state of a node's key (free; a lock, a lock handed over to a
// waiter, or a reservation for one of three waiters, live, at its last
// live instant, or expired), line (each waiter absent, expired, at the
// edge, or alive) and G (each waiter's attempt registered, with its seq,
// lease and value, or not, L12), and every command the client sends (each
// waiter's attempt in line, without a seq, or with one above or below the
// one registered, and a lease; its undo of the lock's value, or of
// another, sending it to the back; its leave, alone, putting another
// waiter in, or giving back its value; its claim; a release of the lock's
// value with and without announcement, of another value; a plain SET NX),
// with and without the rights to the line (L8). Checked on the model,
// which the differential test proves to be the scripts:
//   - a live lock is changed only by the release or the undo of its value,
//     by the leave of a waiter that gives it back, or by a newer attempt
//     of the waiter it was handed over to (L12);
//   - a grant happens only on a key free (or expired) to a plain SET NX or
//     to the first in line, on a key reserved for the waiter, or on one
//     handed over to an earlier attempt of the waiter (it holds the value
//     of the attempt G has, and the take's seq is above that one's, L12);
//     never to a take without a seq or arriving late;
//   - a new reservation names the first live waiter in line, one that
//     registered no attempt, and is made only by the release or undo of a
//     live lock, by the leave or claim of the waiter it was for, or by any
//     leave or claim where the key is free (L12: a key that lapsed while
//     others waited passes to the first of them); a live reservation ends
//     only by its waiter's grant, leave or claim;
//   - L12: a hand-over (announced as "id seq") gives the first live waiter
//     in line the value of the attempt it registered with that seq, for
//     the lease it registered (not the reservation's time), keeps its
//     entry and its field of G, and is made only where a reservation would
//     have been; a key gets a new value otherwise only by a grant; a claim
//     answers 1 exactly where the key holds its value, and never shortens
//     it;
//   - the live entries after a command are those before, with the
//     attempting (or undoing) waiter's renewed for its lifetime, or gone
//     when its attempt was granted (L4), the leaving (or claiming) waiter's
//     gone and its successor's in; G's, with the attempt of the waiter
//     whose take registered one in (a take with a seq above the one there,
//     if any; an undo registers nothing), the leaving, claiming or granted
//     waiter's gone, and those of the expired entries the command dropped.
func TestLineModelNeverAddsAGrant(t *testing.T) {
	const now = caseNow
	states, ops := nodeCases()
	liveLine := func(n *lineNode) map[string]int64 {
		m := map[string]int64{}
		for _, e := range n.line {
			if e.exp > now {
				m[e.id] = e.ticket
			}
		}
		return m
	}
	first := func(m map[string]int64) string {
		best := ""
		for id, tk := range m {
			if best == "" || tk < m[best] || tk == m[best] && id < best {
				best = id
			}
		}
		return best
	}
	cases := 0
	for _, before := range states {
		noRights := before.noRights
		liveKey := before.key
		if before.key != "" && before.keyExp < now {
			liveKey = ""
		}
		for _, o := range ops {
			cases++
			n := before.clone()
			reply, pub := o.run(&n)
			granted := (o.kind == opTake || o.kind == opSet) && reply > 0
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("node %v (rights: %v), %s: %s; node after: %v", &before, !noRights, o.desc, fmt.Sprintf(format, args...), &n)
			}
			ours := o.value != "" && liveKey == o.value // a release, undo or leave (L12) of the live lock
			// L12: a take newer than the attempt G has for its waiter, on a
			// live key handed over to that one.
			reg := before.grantsMap()[o.id]
			_, _, regValue, _ := splitGrant(reg)
			takesHanded := o.kind == opTake && !noRights && liveKey != "" && liveKey == regValue && newerTake(reg, o.seq)
			// The leave or claim of the waiter a live reservation is for,
			// or any leave or claim where the key is free (L12).
			passes := (o.kind == opLeave || o.kind == opClaim || o.kind == opRelease && o.id != "") && (liveKey == "~r:"+o.id || liveKey == "")
			want, wantG := liveLine(&before), before.grantsMap()
			if !noRights {
				o.entries(want, wantG, ours, granted)
			} else if len(before.line) > 0 {
				want = liveLine(&before) // nothing on the line changes
			}
			// L12: a hand-over, announced as "id seq".
			handed := ""
			if h, seq, ok := strings.Cut(pub.msg, " "); ok {
				switch {
				case noRights:
					fail("handed over to %s without the rights to the line", h)
				case h != first(want):
					fail("handed over to %s, but the first in line is %q", h, first(want))
				case !handedAs(wantG[h], seq, n.key, n.keyExp-now):
					fail("handed over to %s as %q with seq %s for %d ms, but it registered %q", h, n.key, seq, n.keyExp-now, wantG[h])
				case pub.suffix != releasedSuffix+":"+clientChannel(h):
					fail("handed over to %s, announced on %q", h, pub.suffix)
				case !ours && !passes:
					fail("handed over to %s", h)
				}
				handed = h
			}
			// An expired entry that the command's read of the line dropped
			// takes its value in G with it.
			for _, e := range before.line {
				if e.exp <= now && n.entry(e.id) < 0 {
					delete(wantG, e.id)
				}
			}
			if got := liveLine(&n); !maps.Equal(got, want) {
				fail("live line %v, want %v", got, want)
			}
			if got := n.grantsMap(); !maps.Equal(got, wantG) {
				fail("grants %v, want %v", got, wantG)
			}
			if noRights {
				want = map[string]int64{} // and nothing on it counts
			}
			changed := n.key != liveKey
			switch {
			case !changed:
			case liveKey != "" && !strings.HasPrefix(liveKey, "~r:") && !ours && !(takesHanded && granted):
				fail("a live lock changed")
			case strings.HasPrefix(liveKey, "~r:") && !(o.id == liveKey[3:] && (granted || passes)):
				fail("a live reservation for %s ended", liveKey[3:])
			}
			// Granted exactly where the key now holds the value written, and
			// did not before (a take is not granted by the key holding its
			// value, L12).
			if w := o.writes(); granted != (w != "" && n.key == w && liveKey != w) {
				fail("reply granted=%v, key %q", granted, n.key)
			}
			if takesHanded && !granted {
				fail("a newer attempt did not take the key handed over to an earlier one of its waiter")
			}
			if granted {
				// The line the take read: its own entry in first, the grant
				// then takes it out (L4).
				read := liveLine(&before)
				if o.id != "" {
					read[o.id] = caseTickets[o.id]
				}
				switch {
				case o.kind == opSet && liveKey == "":
				case o.id != "" && liveKey == "~r:"+o.id:
				case takesHanded: // handed over to an earlier attempt of its own (L12)
				case o.id != "" && liveKey == "" && first(read) == o.id:
				case o.id != "" && liveKey == "" && noRights: // no line here: plain Redlock (L8)
				default:
					fail("granted, but the key was %q and the first in line %q", liveKey, first(read))
				}
			}
			if changed && strings.HasPrefix(n.key, "~r:") {
				switch h := n.key[3:]; {
				case h != first(want):
					fail("reserved for %s, but the first in line is %q", h, first(want))
				case wantG[h] != "" && !(o.kind == opUndo && h == o.id):
					fail("reserved for %s, which registered %q: it is handed over instead (L12)", h, wantG[h])
				case ours, passes:
				default:
					fail("reserved for %s", h)
				}
			}
			if changed && n.key != "" && !strings.HasPrefix(n.key, "~r:") && !granted && handed == "" {
				fail("the key became %q, neither granted nor handed over", n.key)
			}
			if changed && n.key == "" && liveKey != "" && len(want) > 0 {
				fail("deleted the key with %v in line", want)
			}
			if o.kind == opClaim {
				held := liveKey != "" && liveKey == caseValue(o.id)
				if (reply == 1) != held {
					fail("claim answered %d, the key was %q", reply, liveKey)
				}
				if held && n.keyExp < before.keyExp {
					fail("a claim shortened the lock: until %d, was %d", n.keyExp, before.keyExp)
				}
			}
		}
	}
	t.Logf("%d node states and commands checked", cases)
}

// handedAs says whether a hand-over announced with seq that set the key to
// value for px ms is what the field g of G registered (L12).
func handedAs(g, seq, value string, px int64) bool {
	s, lease, v, ok := splitGrant(g)
	return ok && s == seq && v == value && lease == strconv.FormatInt(px, 10)
}

// L8: without the rights to the line's commands a node is plain Redlock:
// a release deletes the key (announcing '1'), an undo deletes it silently,
// a leave changes nothing (unless it gives back the value the key holds:
// that is a release), and a waiter's attempt is a plain SET of a free
// key, refused by a held one, registering nothing (L12); a claim of the
// held value makes it last its TTL.
func TestLineModelWithoutRightsIsPlainRedlock(t *testing.T) {
	n := lineNode{noRights: true}
	if ok, _ := n.setNX(at(0), "h", 1000); !ok {
		t.Fatal("SET NX of a free key refused")
	}
	if got := n.take(at(1), "w1", "v1", 1000, 10, 200, false, "1", "800"); got != 0 || n.key != "h" || n.line != nil || n.grants != nil {
		t.Fatalf("an attempt in line on a held key = %d; node %v", got, &n)
	}
	if got, pub := n.release(at(2), "h", true, 200, ""); got != 1 || n.key != "" || pub != (announcement{releasedSuffix, "1"}) {
		t.Fatalf("release = %d, published %v; node %v", got, pub, &n)
	}
	if _, pub := n.leave(at(3), "w1", "v1", 200, &successor{"w2", 20, 200}); n.line != nil || pub != (announcement{}) {
		t.Fatalf("leave published %v; node %v", pub, &n)
	}
	n.setNX(at(4), "v0", 1000)
	if got, pub := n.undo(at(5), "w1", "v0", 30, 200, 200); got != 1 || n.key != "" || pub != (announcement{}) {
		t.Fatalf("undo = %d, published %v; node %v", got, pub, &n)
	}
	if got := n.take(at(6), "w1", "v1", 1000, 10, 200, false, "3", "800"); got != 1 || n.key != "v1" || n.grants != nil {
		t.Fatalf("an attempt in line on a free key, the line unreadable = %d; node %v: want it granted (L8)", got, &n)
	}
	if got, pub := n.claim(at(7), "w1", "v1", 5000, 200, &successor{"w2", 20, 200}); got != 1 || n.keyExp != 5007 || n.line != nil || pub != (announcement{}) {
		t.Fatalf("claim = %d, published %v; node %v", got, pub, &n)
	}
	if got, pub := n.leave(at(8), "w1", "v1", 200, nil); got != 1 || n.key != "" || pub != (announcement{releasedSuffix, "1"}) {
		t.Fatalf("a leave giving back the held value = %d, published %v; node %v", got, pub, &n)
	}
}

// L3: nothing is left behind: after every command of the small world, on
// every node state, the line's hash, when it exists, has an expiry, so it
// goes by itself once nobody renews it; and so has G (L12).
func TestLineModelLeavesNoLineBehind(t *testing.T) {
	states, ops := nodeCases()
	var found string
	for _, before := range states {
		for _, o := range ops {
			n := before.clone()
			o.run(&n)
			if n.line != nil && !n.lineTTL && found == "" {
				found = fmt.Sprintf("node %v, %s: the line %v has no expiry", &before, o.desc, n.entries())
			}
			if n.grants != nil && !n.grantsTTL && found == "" {
				found = fmt.Sprintf("node %v, %s: G %v has no expiry", &before, o.desc, n.grantsMap())
			}
		}
	}
	if found != "" {
		t.Fatal(found)
	}
}
