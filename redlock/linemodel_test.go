package redlock

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file is a Go model of what one node does for one lock name: the
// lock key, the line of waiters and the fencing counter, as line.lua,
// release.lua (both with line_head.lua) and the plain acquisition (SET NX
// PX GET, acquire.lua) change them. It mirrors the scripts statement by
// statement, the node's clocks included: the differential test
// (linemodel_diff_test.go) runs random sequences on the model and on a real
// redis-server through the real scripts and compares every reply and the
// resulting state, and the interleaving tests (linemodel_world_test.go)
// explore the protocol on N such nodes.

// lineNode is one node's state for one lock name. Times are the node's
// clock in milliseconds (in the interleaving tests: model time).
type lineNode struct {
	key     string      // the lock key's value; "" when the key does not exist
	keyExp  int64       // the key's expiry (always set: every write has PX)
	line    []lineEntry // the line's hash, sorted by id; nil when it does not exist
	lineExp int64       // the hash's expiry (always set: take gives it one)
	counter int64       // the fencing counter; 0 when it does not exist

	cov lineCoverage // which branches ran, when not nil (not part of the state)
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
	"head: dropped an expired entry",
	"head: emptied the line",
	"hand: reserved for the first in line",
	"hand: deleted, nobody in line, announced",
	"hand: deleted, nobody in line, silent",
	"release: not ours",
	"leave: passed the reservation on",
	"leave: no reservation for it",
	"set: granted",
	"set: refused by a reservation",
	"set: refused by a lock",
	"expire: key",
	"expire: line",
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
	return c
}

// expire is Redis's lazy expiry at the start of a command: a key is gone
// once the time is past its expiry (now > when).
func (n *lineNode) expire(snap int64) {
	if n.key != "" && snap > n.keyExp {
		n.key = ""
		n.cov.hit("expire: key")
	}
	if n.line != nil && snap > n.lineExp {
		n.line = nil
		n.cov.hit("expire: line")
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

// head is line_head.lua's head(): it drops the entries whose expiry is not
// after now (HDEL; the hash goes with its last field) and returns the id
// with the smallest (ticket, id), or "".
func (n *lineNode) head(c *scriptClock) string {
	if n.line == nil {
		return ""
	}
	now := c.time()
	var kept []lineEntry
	best := -1
	for _, e := range n.line {
		if e.exp <= now {
			n.cov.hit("head: dropped an expired entry")
			continue
		}
		kept = append(kept, e)
		if b := len(kept) - 1; best < 0 || e.ticket < kept[best].ticket || (e.ticket == kept[best].ticket && e.id < kept[best].id) {
			best = b
		}
	}
	if len(kept) < len(n.line) {
		n.line = kept // a new slice: clones share the old one
		if kept == nil {
			n.cov.hit("head: emptied the line")
		}
	}
	if best < 0 {
		return ""
	}
	return kept[best].id
}

// hand is line_head.lua's hand(): a reservation for the first in line for
// reserve ms, announced with its id; or, with nobody in line, DEL, announced
// with '1' when announce is set. It returns what was published, if anything.
func (n *lineNode) hand(c *scriptClock, reserve int64, announce bool) (pub string, published bool) {
	if h := n.head(c); h != "" {
		n.key, n.keyExp = "~r:"+h, c.mstime()+reserve
		n.cov.hit("hand: reserved for the first in line")
		return h, true
	}
	n.key = ""
	if announce {
		n.cov.hit("hand: deleted, nobody in line, announced")
		return "1", true
	}
	n.cov.hit("hand: deleted, nobody in line, silent")
	return "", false
}

// take is line.lua's take: (re)enter the line, then take the key if it is
// reserved for id, or free with id first in line. It returns 1 (or the
// counter, fenced) when granted, 0 when not.
func (n *lineNode) take(c *scriptClock, id, value string, ttl, ticket, lifetime int64, fence bool) int64 {
	n.expire(c.snap)
	// HSET: a new field, or a new value for id's field.
	e := lineEntry{id: id, ticket: ticket, exp: c.time() + lifetime}
	created := n.line == nil
	line := make([]lineEntry, 0, len(n.line)+1)
	if i := n.entry(id); i >= 0 {
		line = append(append(append(line, n.line[:i]...), e), n.line[i+1:]...)
	} else {
		i, _ := slices.BinarySearchFunc(n.line, id, func(e lineEntry, id string) int { return strings.Compare(e.id, id) })
		line = append(append(append(line, n.line[:i]...), e), n.line[i:]...)
	}
	n.line = line
	// PEXPIRE 2*lifetime NX, then GT: a new hash gets the expiry, an old one
	// only a later one.
	if exp := c.mstime() + 2*lifetime; created || exp > n.lineExp {
		n.lineExp = exp
	}
	mine := n.key == "~r:"+id
	if mine {
		n.cov.hit("take: granted, reserved for it")
	} else if n.key == "" {
		mine = n.head(c) == id
		if mine {
			n.cov.hit("take: granted, free and first in line")
		} else {
			n.cov.hit("take: refused, free but another is first")
		}
	} else {
		n.cov.hit("take: refused, held or reserved for another")
	}
	if !mine {
		return 0
	}
	n.key, n.keyExp = value, c.mstime()+ttl
	if fence {
		n.counter++
		n.cov.hit("take: fenced grant")
		return n.counter
	}
	return 1
}

// leave is line.lua's leave: the entry goes, and a reservation for id
// passes to the next in line. It returns 1 and what was published.
func (n *lineNode) leave(c *scriptClock, id string, reserve int64) (reply int64, pub string, published bool) {
	n.expire(c.snap)
	if i := n.entry(id); i >= 0 {
		n.line = slices.Delete(slices.Clone(n.line), i, i+1)
		if len(n.line) == 0 {
			n.line = nil // the hash goes with its last field
		}
	}
	if n.key == "~r:"+id {
		n.cov.hit("leave: passed the reservation on")
		pub, published = n.hand(c, reserve, true)
		return 1, pub, published
	}
	n.cov.hit("leave: no reservation for it")
	return 1, "", false
}

// release is release.lua: when the key holds value, hand it on. It
// returns 1 when released, 0 when not ours, and what was published.
func (n *lineNode) release(c *scriptClock, value string, announce bool, reserve int64) (reply int64, pub string, published bool) {
	n.expire(c.snap)
	if value == "" || n.key != value { // GET on a missing key is false, never ''
		n.cov.hit("release: not ours")
		return 0, "", false
	}
	pub, published = n.hand(c, reserve, announce)
	return 1, pub, published
}

// setNX is the plain acquisition: SET NX PX GET (or acquire.lua, fenced).
// It returns whether it was granted and, when not, the value it found.
func (n *lineNode) setNX(c *scriptClock, value string, ttl int64) (granted bool, found string) {
	n.expire(c.snap)
	if n.key != "" {
		if strings.HasPrefix(n.key, "~r:") {
			n.cov.hit("set: refused by a reservation")
		} else {
			n.cov.hit("set: refused by a lock")
		}
		return false, n.key
	}
	n.key, n.keyExp = value, c.mstime()+ttl
	n.cov.hit("set: granted")
	return true, ""
}

// evalReply is what one command answered, in redigo's types, and what it
// published on the release channel.
type evalReply struct {
	v         any // int64, nil, or []byte (SET GET's old value)
	pub       string
	published bool
}

// eval runs on the model the command the client sends (cmd and args as
// handed to the pipe: EVALSHA with a script's hash, or EVAL with its
// source, or SET NX PX GET), decoding its arguments as the scripts do. It
// fails on a layout it does not know.
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
		default:
			return evalReply{}, fmt.Errorf("argument %d: unexpected %T", i, a)
		}
	}
	num := func(i int) int64 {
		v, err := strconv.ParseInt(s[i], 10, 64)
		if err != nil {
			panic(fmt.Sprintf("argument %d = %q: not an integer", i, s[i]))
		}
		return v
	}
	if cmd == "SET" {
		if len(s) != 6 || s[2] != "NX" || s[3] != "PX" || s[5] != "GET" {
			return evalReply{}, fmt.Errorf("SET %q: not SET key value NX PX ttl GET", s)
		}
		if ok, found := n.setNX(c, s[1], num(4)); !ok {
			return evalReply{v: []byte(found)}, nil
		}
		return evalReply{}, nil
	}
	if cmd != "EVALSHA" && cmd != "EVAL" {
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
	keys := int(num(1))
	if len(s) < 2+keys || keys < 2 {
		return evalReply{}, fmt.Errorf("%s with %d keys: too few", script, keys)
	}
	// The keys of one name: L, then L..':line' or L..':fence' (and both).
	want := map[string][]string{
		"line":    {s[2], s[2] + ":line", s[2] + ":fence"},
		"release": {s[2], s[2] + ":line"},
		"acquire": {s[2], s[2] + ":fence"},
	}[script]
	if !slices.Equal(s[2:2+keys], want) {
		return evalReply{}, fmt.Errorf("%s with keys %q, want %q", script, s[2:2+keys], want)
	}
	argv := s[2+keys:]
	switch {
	case script == "line" && keys == 3 && len(argv) == 7 && argv[0] == "take":
		// ARGV: take id value ttl ticket lifetime fence
		v := n.take(c, argv[1], argv[2], num(2+keys+3), num(2+keys+4), num(2+keys+5), argv[6] == "1")
		return evalReply{v: v}, nil
	case script == "line" && keys == 3 && len(argv) == 3 && argv[0] == "leave":
		// ARGV: leave id reserve
		v, pub, ok := n.leave(c, argv[1], num(2+keys+2))
		return evalReply{v: v, pub: pub, published: ok}, nil
	case script == "release" && keys == 2 && len(argv) == 3:
		// ARGV: value announce reserve
		v, pub, ok := n.release(c, argv[0], argv[1] == "1", num(2+keys+2))
		return evalReply{v: v, pub: pub, published: ok}, nil
	case script == "acquire" && keys == 2 && len(argv) == 3:
		// ARGV: value ttl fence
		ok, _ := n.setNX(c, argv[0], num(2+keys+1))
		switch {
		case !ok:
			return evalReply{v: int64(0)}, nil
		case argv[2] == "1":
			n.counter++
			return evalReply{v: n.counter}, nil
		}
		return evalReply{v: int64(1)}, nil
	}
	return evalReply{}, fmt.Errorf("%s with %d keys and ARGV %q: not a layout the model knows", script, keys, argv)
}

// entries renders the line as HGETALL would show it: id -> "ticket:exp".
func (n *lineNode) entries() map[string]string {
	m := make(map[string]string, len(n.line))
	for _, e := range n.line {
		m[e.id] = strconv.FormatInt(e.ticket, 10) + ":" + strconv.FormatInt(e.exp, 10)
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
		fmt.Fprintf(&b, ", line (until %d):", n.lineExp)
		for _, e := range slices.SortedFunc(slices.Values(n.line), func(a, b lineEntry) int {
			return cmp.Or(cmp.Compare(a.ticket, b.ticket), strings.Compare(a.id, b.id))
		}) {
			fmt.Fprintf(&b, " %s(ticket %d, until %d)", e.id, e.ticket, e.exp)
		}
	}
	if n.counter != 0 {
		fmt.Fprintf(&b, ", counter %d", n.counter)
	}
	return b.String()
}

// L1, L2, L4: the model's own rules, on a hand-written sequence: the line
// orders by (ticket, id) whatever the arrival, a release reserves for the
// first, only that waiter takes the reservation, leaving passes it on, and
// an expired entry is dropped the next time the line is read.
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
		if got := n.take(at(1), w.id, "v"+w.id, ttl, w.ticket, life, false); got != 0 {
			t.Fatalf("%s took a held key", w.id)
		}
	}
	if got, pub, _ := n.release(at(2), "holder", true, reserve); got != 1 || pub != "wA" || n.key != "~r:wA" {
		t.Fatalf("release = %d, published %q, key %q; want 1, wA, ~r:wA", got, pub, n.key)
	}
	if ok, _ := n.setNX(at(3), "barger", ttl); ok {
		t.Fatal("SET NX took a reservation (L5, L2)")
	}
	if got := n.take(at(3), "wB", "vwB", ttl, 20, life, false); got != 0 {
		t.Fatal("wB took the reservation for wA")
	}
	// wA gives up: its reservation passes to wB.
	if _, pub, _ := n.leave(at(4), "wA", reserve); pub != "wB" || n.key != "~r:wB" {
		t.Fatalf("leave published %q, key %q; want wB, ~r:wB", pub, n.key)
	}
	if got := n.take(at(5), "wB", "vwB", ttl, 20, life, false); got != 1 || n.key != "vwB" {
		t.Fatalf("wB's take = %d, key %q", got, n.key)
	}
	// wC stops attempting; wB leaves and releases after wC's entry expired:
	// nobody is in line, the key is deleted and '1' announced.
	n.leave(at(6), "wB", reserve)
	if got, pub, _ := n.release(at(1+life), "vwB", true, reserve); got != 1 || pub != "1" || n.key != "" || n.line != nil {
		t.Fatalf("release after the last entry expired = %d, published %q, node %v", got, pub, &n)
	}
}
