package redlock_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// electionOpts are the candidates' client options: a node timeout with room
// for a loaded test machine.
var electionOpts = []redlock.Option{redlock.WithNodeTimeout(100 * time.Millisecond)}

// candidate returns a new client on c (a separate instance, as a separate
// process would be) and its Election called name.
func candidate(t *testing.T, c *redistest.Cluster, name string, opts ...redlock.Option) (*redlock.Client, *redlock.Election) {
	t.Helper()
	cl := newClient(t, c, append(electionOpts[:len(electionOpts):len(electionOpts)], opts...)...)
	e, err := cl.Election(name)
	if err != nil {
		t.Fatal(err)
	}
	return cl, e
}

// campaign runs Campaign in the background and reports its outcome.
func campaign(ctx context.Context, e *redlock.Election, value string, opts ...redlock.Option) <-chan *redlock.Lock {
	got := make(chan *redlock.Lock, 1)
	go func() {
		l, err := e.Campaign(ctx, value, opts...)
		if err != nil {
			l = nil
		}
		got <- l
	}()
	return got
}

// leaderIs polls e.Leader until it reports want (or fails the test after
// 10 s): the record reaches the last nodes a moment after Campaign returned.
func leaderIs(t *testing.T, e *redlock.Election, want redlock.Leader) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.Leader(t.Context())
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Leader = %+v, %v; want %+v", got, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// V1, V2: candidates on separate clients, campaigning over and over: never
// two leaders at once, and every leader's term is greater than the
// previous one's.
func TestElectionOneLeaderAtATime(t *testing.T) {
	c := redistest.New(t, 3)
	const candidates, leaderships = 4, 24
	s := newLeaderships()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	campaignOverAndOver(ctx, t, c, "one-at-a-time", candidates, func(i int, l *redlock.Lock) {
		s.mu.Lock()
		s.lead(i, l)
		if s.count >= leaderships {
			cancel()
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond) // lead for a moment
		s.mu.Lock()
		s.current = -1
		s.mu.Unlock()
	})
	s.check(t, leaderships, "60s")
}

// V7, V2, V3: a resigning leader hands over to the candidate waiting in line,
// whose term is greater; Leader then reports it.
func TestElectionResignHandsOver(t *testing.T) {
	c := redistest.New(t, 3)
	_, a := candidate(t, c, "handover")
	_, b := candidate(t, c, "handover")
	la, err := a.Campaign(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// V3: Campaign returned once a quorum holds the record: Leader reports
	// it at once, with no waiting.
	if got, err := a.Leader(t.Context()); err != nil || got != (redlock.Leader{Value: "a", Token: la.Token()}) {
		t.Fatalf("Leader right after Campaign = %+v, %v; want a, term %d", got, err, la.Token())
	}
	got := campaign(t.Context(), b, "b")
	inLine(t, c, redlock.ElectionPrefix+"handover", 1)
	if err := la.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	var lb *redlock.Lock
	select {
	case lb = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting candidate does not lead 10s after the leader resigned")
	}
	if lb == nil {
		t.Fatal("the waiting candidate's Campaign failed")
	}
	if lb.Token() <= la.Token() {
		t.Fatalf("term %d after term %d", lb.Token(), la.Token())
	}
	leaderIs(t, a, redlock.Leader{Value: "b", Token: lb.Token()})
	lb.Unlock(t.Context())
}

// V2, V7: a leader that dies without resigning (its client closed) is
// replaced once its TTL ran out, by a leader of a greater term.
func TestElectionDeadLeaderReplacedAfterTTL(t *testing.T) {
	c := redistest.New(t, 3)
	ca, a := candidate(t, c, "dead-leader")
	_, b := candidate(t, c, "dead-leader")
	la, err := a.Campaign(t.Context(), "a", redlock.WithTTL(600*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got := campaign(t.Context(), b, "b")
	inLine(t, c, redlock.ElectionPrefix+"dead-leader", 1)
	ca.Close() // dies: no resignation, no more extensions
	var lb *redlock.Lock
	select {
	case lb = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no new leader 20s after the leader died with a TTL of 600ms")
	}
	if lb == nil {
		t.Fatal("the waiting candidate's Campaign failed")
	}
	if lb.Token() <= la.Token() {
		t.Fatalf("term %d after term %d", lb.Token(), la.Token())
	}
	leaderIs(t, b, redlock.Leader{Value: "b", Token: lb.Token()})
	lb.Unlock(t.Context())
}

// V4: Leader answers while a minority of the nodes is down, and reports
// no leader when only a minority still holds the leadership, when nobody
// leads, and when a majority is down (each node's failure inside).
func TestLeaderFromAQuorum(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "quorum-read"
	_, e := candidate(t, c, name)
	l, err := e.Campaign(t.Context(), "leader-1")
	if err != nil {
		t.Fatal(err)
	}
	want := redlock.Leader{Value: "leader-1", Token: l.Token()}
	leaderIs(t, e, want)
	nodes := c.Nodes()
	if err := nodes[2].Kill(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Leader(t.Context()); err != nil || got != want {
		t.Fatalf("with one node of three down: Leader = %+v, %v; want %+v", got, err, want)
	}
	if err := nodes[2].Start(); err != nil {
		t.Fatal(err)
	}
	// The leadership lost on a majority: its key gone from two nodes, the
	// records still there (as when the keys expired unextended).
	for _, n := range nodes[:2] {
		if _, err := n.Do("DEL", redlock.LockKey(redlock.ElectionPrefix+name)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.Leader(t.Context())
	var nle *redlock.NoLeaderError
	if !errors.Is(err, redlock.ErrNoLeader) || !errors.As(err, &nle) || nle.Agreeing > 1 {
		t.Fatalf("leadership on one node of three: Leader err = %v, want ErrNoLeader with at most 1 agreeing", err)
	}
	l.Unlock(t.Context())
	// Nobody leads: the records are there, the lock keys gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = e.Leader(t.Context())
		if errors.As(err, &nle) && nle.Empty >= nle.Quorum {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the resignation: Leader err = %v, want a quorum saying nobody leads", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(err.Error(), "nobody leads") {
		t.Fatalf("message %q does not say nobody leads", err)
	}
	for _, n := range nodes[:2] {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	// Decided once no leadership can reach a quorum: the last node's
	// answer may not be awaited (as A6).
	_, err = e.Leader(t.Context())
	var ne *redlock.NodeError
	if !errors.Is(err, redlock.ErrNoLeader) || !errors.As(err, &ne) || !errors.As(err, &nle) || nle.Failed < 1 || nle.Agreeing > 0 {
		t.Fatalf("two nodes of three down: Leader err = %v, want ErrNoLeader with the nodes' failures", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Leader(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, redlock.ErrNoLeader) {
		t.Fatalf("Leader on a cancelled context: %v, want context.Canceled and ErrNoLeader", err)
	}
}

// V5: an Election never reports a term older than one it reported. The
// nodes are made to report an older leadership (as a node restarted
// without its data could); a fresh Election reports it, the one that saw
// the newer term does not.
func TestLeaderNeverGoesBack(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "never-back"
	_, e := candidate(t, c, name)
	l1, err := e.Campaign(t.Context(), "first")
	if err != nil {
		t.Fatal(err)
	}
	leaderIs(t, e, redlock.Leader{Value: "first", Token: l1.Token()})
	l1.Unlock(t.Context())
	l2, err := e.Campaign(t.Context(), "second")
	if err != nil {
		t.Fatal(err)
	}
	leaderIs(t, e, redlock.Leader{Value: "second", Token: l2.Token()})
	l2.Unlock(t.Context())
	// Forge a live leadership of the first term on every node.
	const secret = "forged-lock-value"
	sum := sha1.Sum([]byte(secret))
	for _, n := range c.Nodes() {
		if _, err := n.Do("SET", redlock.LockKey(redlock.ElectionPrefix+name), secret, "PX", 60000); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Do("HSET", redlock.LeaderKey(name), "term", l1.Token(), "fp", hex.EncodeToString(sum[:]), "value", "first"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.Leader(t.Context())
	var nle *redlock.NoLeaderError
	if !errors.As(err, &nle) || nle.Older != l1.Token() || !errors.Is(err, redlock.ErrNoLeader) {
		t.Fatalf("older term after a newer one: Leader err = %v, want ErrNoLeader with Older = %d", err, l1.Token())
	}
	_, fresh := candidate(t, c, name)
	if got, err := fresh.Leader(t.Context()); err != nil || got.Token != l1.Token() {
		t.Fatalf("a fresh Election: Leader = %+v, %v; want term %d", got, err, l1.Token())
	}
}

// V6: Observe sends the current leader, then each change, in term order
// (no leader as the zero Leader), and is closed when its context ends.
func TestObserveInTermOrder(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "observed"
	_, watcher := candidate(t, c, name)
	ctx, cancel := context.WithCancel(t.Context())
	ch := watcher.Observe(ctx)
	var prev uint64
	// next takes values until want, checking the order on the way.
	next := func(want redlock.Leader) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case got, ok := <-ch:
				if !ok {
					t.Fatal("closed before its context ended")
				}
				if got.Token != 0 {
					if got.Token <= prev {
						t.Fatalf("term %d after term %d", got.Token, prev)
					}
					prev = got.Token
				}
				if got == want {
					return
				}
			case <-timeout:
				t.Fatalf("%+v not observed within 10s", want)
			}
		}
	}
	next(redlock.Leader{}) // nobody leads yet
	for i := range 3 {
		_, e := candidate(t, c, name)
		l, err := e.Campaign(t.Context(), fmt.Sprint("leader-", i))
		if err != nil {
			t.Fatal(err)
		}
		next(redlock.Leader{Value: fmt.Sprint("leader-", i), Token: l.Token()})
		l.Unlock(t.Context())
	}
	next(redlock.Leader{}) // nobody leads any more
	cancel()
	for range ch { // drains, and ends when it is closed
	}
}

// V6: a receiver that does not keep up gets the latest leader, and the
// observer never blocks: leaders come and go while nobody receives.
func TestObserveSlowReceiverGetsTheLatest(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "slow-observer"
	_, watcher := candidate(t, c, name)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := watcher.Observe(ctx)
	_, e := candidate(t, c, name)
	var l *redlock.Lock
	for i := range 4 {
		var err error
		if l, err = e.Campaign(t.Context(), fmt.Sprint("leader-", i)); err != nil {
			t.Fatal(err)
		}
		leaderIs(t, e, redlock.Leader{Value: fmt.Sprint("leader-", i), Token: l.Token()})
		if i < 3 {
			l.Unlock(t.Context())
		}
	}
	// The observer has long seen the last leader (announced, or polled):
	// the value waiting is the latest one it saw.
	deadline := time.After(10 * time.Second)
	var prev uint64
	for {
		select {
		case got := <-ch:
			if got.Token != 0 && got.Token <= prev {
				t.Fatalf("term %d after term %d", got.Token, prev)
			}
			if got.Token != 0 {
				prev = got.Token
			}
			if got.Token == l.Token() {
				l.Unlock(t.Context())
				return
			}
		case <-deadline:
			t.Fatalf("the last leader (term %d) not observed within 10s; last seen %d", l.Token(), prev)
		}
	}
}

// V8: bad election names, values and options are refused, naming the bad
// value without printing a huge one; the record holds the value and a
// fingerprint of the lock value, never the lock value itself.
func TestElectionBadInputAndRecord(t *testing.T) {
	c := redistest.New(t, 3)
	cl, e := candidate(t, c, "record")
	for _, name := range []string{"", strings.Repeat("n", redlock.MaxNameLen)} {
		if _, err := cl.Election(name); !errors.Is(err, redlock.ErrInvalidOption) {
			t.Fatalf("Election(%d bytes): %v, want ErrInvalidOption", len(name), err)
		}
	}
	huge := strings.Repeat("v", redlock.MaxLeaderValueLen+1)
	_, err := e.Campaign(t.Context(), huge)
	if !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), fmt.Sprint(len(huge))) || len(err.Error()) > 200 {
		t.Fatalf("Campaign with a huge value: %v, want ErrInvalidOption naming its length, briefly", err)
	}
	if _, err := e.Campaign(t.Context(), "v", redlock.WithTries(3)); !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), "tries 3") {
		t.Fatalf("Campaign with WithTries: %v, want ErrInvalidOption naming it", err)
	}
	if _, err := e.Campaign(t.Context(), "v", redlock.WithTTL(-1)); !errors.Is(err, redlock.ErrInvalidOption) {
		t.Fatalf("Campaign with a bad TTL: %v, want ErrInvalidOption", err)
	}
	l, err := e.Campaign(t.Context(), "public-address:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(t.Context())
	settled(t, c, redlock.ElectionPrefix+"record", 3)
	n := c.Nodes()[0]
	secret := keyOn(t, n, redlock.ElectionPrefix+"record")
	deadline := time.Now().Add(10 * time.Second)
	var rec map[string]string
	for len(rec) == 0 {
		if rec, err = redis.StringMap(n.Do("HGETALL", redlock.LeaderKey("record"))); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader record on node 0 after 10s")
		}
	}
	sum := sha1.Sum([]byte(secret))
	if rec["fp"] != hex.EncodeToString(sum[:]) || rec["value"] != "public-address:8080" || rec["term"] != fmt.Sprint(l.Token()) {
		t.Fatalf("record %v: want the term %d, the value and sha1 of the lock value", rec, l.Token())
	}
	for k, v := range rec {
		if strings.Contains(v, secret) {
			t.Fatalf("record field %s holds the lock's secret value", k)
		}
	}
	if ttl, _ := redis.Int64(n.Do("PTTL", redlock.LeaderKey("record"))); ttl != -1 {
		t.Fatalf("record PTTL %d, want none (-1): reads check it against the lock", ttl)
	}
}

// V1: Campaign waits until its context ends, and its error says so; the
// waiting candidate leaves no trace in the line.
func TestCampaignEndsWithItsContext(t *testing.T) {
	c := redistest.New(t, 3)
	_, a := candidate(t, c, "ctx-end")
	_, b := candidate(t, c, "ctx-end")
	l, err := a.Campaign(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.Campaign(ctx, "b")
		done <- err
	}()
	// The candidate waits in line before its context ends: otherwise the
	// empty line at the end would prove nothing.
	inLine(t, c, redlock.ElectionPrefix+"ctx-end", 1)
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("Campaign past its context: %v, want Canceled and ErrNotAcquired", err)
	}
	inLine(t, c, redlock.ElectionPrefix+"ctx-end", 0)
}

// V6: with a minority of the nodes down, Observe still tells that nobody
// leads once a quorum of the live nodes says so: the read that judges it
// must not be decided by a failed node's answer and one empty answer
// before the other live node has answered.
func TestObserveNobodyLeadsWithANodeDown(t *testing.T) {
	c := redistest.New(t, 3)
	const name = "observed-node-down"
	if err := c.Nodes()[0].Kill(); err != nil {
		t.Fatal(err)
	}
	_, watcher := candidate(t, c, name)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := watcher.Observe(ctx)
	_, e := candidate(t, c, name)
	l, err := e.Campaign(t.Context(), "leader")
	if err != nil {
		t.Fatal(err)
	}
	want := redlock.Leader{Value: "leader", Token: l.Token()}
	timeout := time.After(10 * time.Second)
	for seen := false; ; {
		select {
		case got := <-ch:
			switch {
			case got == want && !seen:
				seen = true
				l.Unlock(t.Context())
			case got == redlock.Leader{} && seen:
				return
			}
		case <-timeout:
			t.Fatalf("with one node of three down: the leader seen %v, nobody leading not observed within 10s of the resignation", l.Err() != nil)
		}
	}
}
