package redlock_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// holderTau is the node timeout of these tests: generous, so that a loaded
// machine does not fail a read that the test is not about.
const holderTau = time.Second

// readHolder reads name's holder, failing the test on an error.
func readHolder(t *testing.T, cl *redlock.Client, name string) *redlock.HolderStatus {
	t.Helper()
	st, err := cl.Holder(t.Context(), name)
	if err != nil {
		t.Fatalf("Holder(%q): %v", name, err)
	}
	return st
}

// checkHolder fails unless h is this process with label, stamped between
// before and after (wall clock, to the millisecond).
func checkHolder(t *testing.T, h *redlock.Holder, label string, before, after time.Time) {
	t.Helper()
	host, _ := os.Hostname()
	switch {
	case h == nil:
		t.Fatal("no holder")
	case h.Host != host || h.PID != os.Getpid() || h.Label != label:
		t.Errorf("holder %+v; want host %q, pid %d, label %q", h, host, os.Getpid(), label)
	case h.Since.Before(before.Truncate(time.Millisecond)) || h.Since.After(after):
		t.Errorf("holder since %v; want within [%v, %v]", h.Since, before, after)
	}
}

// M1: every way of taking the lock (plain SET NX, the fencing script, a
// waiter's take in line) writes the holder with the acquisition, on every
// node, after the secret; the read finds it on every node and names it as
// the quorum's; and it expires with the lock.
func TestHolderIsWrittenWithEveryAcquisition(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithNodeTimeout(holderTau), redlock.WithHolder("default label"))
	ctx := t.Context()

	// check reads the holder of name on every node once want nodes hold
	// it: all 3 for a fresh name, 2 (the quorum) for a lock taken in line,
	// where the release may reach the third node after the waiter's take
	// (refused there) and its leave, and so delete the key there.
	check := func(path, name, label string, before time.Time, want int) {
		t.Helper()
		if want == 3 {
			settled(t, c, name, want)
		} else {
			waitUntil(t, 10*time.Second, path+": every node holds the lock or nothing", func() bool {
				st := readHolder(t, cl, name)
				n := 0
				for _, nd := range st.Nodes {
					switch {
					case nd.State == redlock.KeyHeld && nd.Fingerprint == st.Fingerprint:
						n++
					case nd.State != redlock.KeyFree:
						return false
					}
				}
				return st.Verdict == redlock.VerdictHeld && n >= want
			})
		}
		after := time.Now()
		st := readHolder(t, cl, name)
		if st.Verdict != redlock.VerdictHeld || st.Answered() != 3 || st.Quorum != 2 {
			t.Fatalf("%s: verdict %q, %d answered, quorum %d; want held, 3 answers, quorum 2", path, st.Verdict, st.Answered(), st.Quorum)
		}
		checkHolder(t, st.Holder, label, before, after)
		for i, n := range st.Nodes {
			if want < 3 && n.State == redlock.KeyFree {
				continue // the third node, released after the take (above)
			}
			if n.State != redlock.KeyHeld || n.Fingerprint != st.Fingerprint || n.TTL <= 0 || n.TTL > 10*time.Second {
				t.Errorf("%s: node %d: %+v; want held, fingerprint %s, a TTL", path, i, n, st.Fingerprint)
			}
			checkHolder(t, n.Holder, label, before, after)
			v := keyOn(t, c.Nodes()[i], name)
			secret, part, ok := strings.Cut(v, " ")
			if !ok || len(secret) < 26 || !strings.HasPrefix(part, `{"h":`) {
				t.Errorf("%s: node %d: value %q; want a 26-character secret, a space, the holder", path, i, v)
			}
		}
	}

	before := time.Now()
	l, err := cl.TryLock(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	check("SET NX", "plain", "default label", before, 3)
	l.Unlock(ctx)

	before = time.Now()
	l, err = cl.TryLock(ctx, "fenced", redlock.WithFencing(), redlock.WithHolder("fenced job"))
	if err != nil {
		t.Fatal(err)
	}
	check("fencing script", "fenced", "fenced job", before, 3)
	l.Unlock(ctx)

	// In line: a second client waits, and takes the lock with line.lua's
	// take when the first releases it.
	other := newClient(t, c, redlock.WithNodeTimeout(holderTau))
	first, err := cl.TryLock(ctx, "line")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *redlock.Lock, 1)
	// The value that takes it may be made by an attempt before the release,
	// and written by a hand-over (L12).
	before = time.Now()
	go func() {
		l, err := other.Lock(ctx, "line", redlock.WithHolder("waiter"), redlock.WithTries(1<<20))
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- l
	}()
	waitLine(t, c, "line")
	first.Unlock(ctx)
	second := <-got
	if second == nil {
		t.FailNow()
	}
	check("line take", "line", "waiter", before, 2)

	// It expires with the lock: a lock nobody releases leaves no holder.
	if _, err := cl.TryLock(ctx, "expires", redlock.WithTTL(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the holder expires with the key", func() bool {
		return readHolder(t, cl, "expires").Verdict == redlock.VerdictFree
	})
	second.Unlock(ctx)
}

// waitLine waits until some waiter stands in the line of name on every node.
func waitLine(t *testing.T, c *redistest.Cluster, name string) {
	t.Helper()
	onEveryNode(t, c, "a waiter in line", func(n *redistest.Node) bool {
		k, _ := n.Do("HLEN", redlock.LineKey(name))
		return k == int64(1)
	})
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// showsNothingOf fails if st, printed or encoded, contains any of secrets.
func showsNothingOf(t *testing.T, st *redlock.HolderStatus, secrets ...string) {
	t.Helper()
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprintf("%+v", *st), fmt.Sprintf("%v", st.Nodes), string(js)} {
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Fatalf("the read shows %q:\n%s", s, out)
			}
		}
	}
}

// M2: the read returns the holder part and a fingerprint of the value,
// never the value or its secret, in every state of the key: a lock, a
// value of an older client, a reservation for a waiter; and the verdict
// names a holder only when Q nodes share a fingerprint.
func TestHolderReadNeverRevealsSecret(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithNodeTimeout(holderTau))
	ctx := t.Context()

	l, err := cl.TryLock(ctx, "secret", redlock.WithHolder("job"))
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, "secret", 3)
	value := keyOn(t, c.Nodes()[0], "secret")
	secret, _, _ := strings.Cut(value, " ")
	sum := sha1.Sum([]byte(value))
	st := readHolder(t, cl, "secret")
	if st.Verdict != redlock.VerdictHeld || st.Fingerprint != hex.EncodeToString(sum[:])[:8] {
		t.Errorf("verdict %q, fingerprint %q; want held, the first 8 hex digits of SHA-1 of the value", st.Verdict, st.Fingerprint)
	}
	showsNothingOf(t, st, value, secret)
	l.Unlock(ctx)
	settled(t, c, "secret", 0)

	// An older client's value: held, no holder, nothing of the value shown.
	const old = "OLDCLIENTSECRETVALUE234567"
	for _, n := range c.Nodes() {
		n.Do("SET", redlock.LockKey("secret"), old, "PX", 10000)
	}
	st = readHolder(t, cl, "secret")
	if st.Verdict != redlock.VerdictHeld || st.Holder != nil || st.Nodes[0].State != redlock.KeyNoHolder {
		t.Errorf("older value: verdict %q, holder %v, state %q; want held, none, %q", st.Verdict, st.Holder, st.Nodes[0].State, redlock.KeyNoHolder)
	}
	showsNothingOf(t, st, old)

	// On one node only: no quorum holds it.
	for _, n := range c.Nodes()[1:] {
		n.Do("DEL", redlock.LockKey("secret"))
	}
	if st = readHolder(t, cl, "secret"); st.Verdict != redlock.VerdictSplit || st.Holder != nil {
		t.Errorf("a key on 1 of 3: verdict %q, holder %v; want split, none", st.Verdict, st.Holder)
	}
	c.Nodes()[0].Do("DEL", redlock.LockKey("secret"))

	// A reservation names a waiter, whose id would take the lock: a dead
	// waiter in line, and a release that reserves the lock for it.
	l, err = cl.TryLock(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	const waiter = "wDEADWAITERID"
	for _, n := range c.Nodes() {
		if _, err := redlock.LineTake(n.Do, "secret", waiter, 1, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
	}
	l.Unlock(ctx)
	st = readHolder(t, cl, "secret")
	if st.Verdict != redlock.VerdictReserved || st.Holder != nil || st.Nodes[0].State != redlock.KeyReserved || st.Nodes[0].TTL <= 0 {
		t.Errorf("reserved: verdict %q, holder %v, node %+v; want reserved, none", st.Verdict, st.Holder, st.Nodes[0])
	}
	showsNothingOf(t, st, waiter)

	// A key of another type is no lock.
	for _, n := range c.Nodes() {
		n.Do("DEL", redlock.LockKey("other"))
		n.Do("HSET", redlock.LockKey("other"), "f", "v")
	}
	if st = readHolder(t, cl, "other"); st.Verdict != redlock.VerdictSplit || st.Nodes[0].State != redlock.KeyOther {
		t.Errorf("a hash: verdict %q, state %q; want split, %q", st.Verdict, st.Nodes[0].State, redlock.KeyOther)
	}
}

// M2: the read reports each node; a node down is a *NodeError with its
// address, and the verdict still stands with a quorum of answers (A5);
// without one it is unknown. Bad input and a closed client are errors.
func TestHolderReadNodeFailures(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithNodeTimeout(holderTau), redlock.WithFencing())
	l, err := cl.TryLock(t.Context(), "nf")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	settled(t, c, "nf", 3)
	c.Nodes()[2].Kill()
	st := readHolder(t, cl, "nf")
	var ne *redlock.NodeError
	if !errors.As(st.Nodes[2].Err, &ne) || ne.Addr != c.Nodes()[2].Addr() {
		t.Errorf("killed node: %+v; want a *NodeError with its address", st.Nodes[2])
	}
	if st.Verdict != redlock.VerdictHeld || st.Holder == nil || st.Nodes[0].Counter < 1 {
		t.Errorf("2 of 3 answered: verdict %q, holder %v, counter %d; want held, the holder, >= 1", st.Verdict, st.Holder, st.Nodes[0].Counter)
	}
	c.Nodes()[1].Kill()
	if st = readHolder(t, cl, "nf"); st.Verdict != redlock.VerdictUnknown || st.Holder != nil {
		t.Errorf("1 of 3 answered: verdict %q, holder %v; want unknown", st.Verdict, st.Holder)
	}
	if _, err := cl.Holder(t.Context(), ""); !errors.Is(err, redlock.ErrInvalidOption) {
		t.Errorf("Holder of an empty name: %v; want ErrInvalidOption", err)
	}
	cl.Close()
	if _, err := cl.Holder(t.Context(), "nf"); !errors.Is(err, redlock.ErrClosed) {
		t.Errorf("Holder after Close: %v; want ErrClosed", err)
	}
}

// M1: a label is checked once, at New or at the call, and named when bad;
// a good one, quotes and all, comes back as it was given.
func TestWithHolderLabels(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 1)
	for _, bad := range []string{strings.Repeat("x", 129), "tab\there", "new\nline", "\x7f", "bad utf-8 \xff"} {
		if _, err := redlock.New(newPools(t, c.Addrs()), redlock.WithHolder(bad)); !errors.Is(err, redlock.ErrInvalidOption) || !strings.Contains(err.Error(), "holder label") {
			t.Errorf("New(WithHolder(%q)): %v; want ErrInvalidOption naming the holder label", bad, err)
		}
	}
	cl := newClient(t, c, redlock.WithNodeTimeout(holderTau))
	if _, err := cl.TryLock(t.Context(), "label", redlock.WithHolder("a\x00b")); !errors.Is(err, redlock.ErrInvalidOption) {
		t.Errorf("TryLock(WithHolder(NUL)): %v; want ErrInvalidOption", err)
	}
	for _, good := range []string{`quote " and \ backslash`, "ünïcödé ✓ 日本", strings.Repeat("y", 128), `{"h":"x"} `} {
		l, err := cl.TryLock(t.Context(), "label", redlock.WithHolder(good))
		if err != nil {
			t.Fatalf("TryLock(WithHolder(%q)): %v", good, err)
		}
		if st := readHolder(t, cl, "label"); st.Holder == nil || st.Holder.Label != good {
			t.Errorf("label %q read back as %+v", good, st.Holder)
		}
		l.Unlock(t.Context())
	}
}

// M3: ForceUnlock removes a held lock on every node, and only the lock
// key: the fencing counter stays, so the next holder's token is larger;
// the holder it broke still believes it holds (until Until()) and cannot
// release the next holder's key; a waiter in line is handed the lock at
// once; with nothing held it removes nothing.
func TestForceUnlock(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c, redlock.WithNodeTimeout(holderTau), redlock.WithFencing())
	ctx := t.Context()
	stuck, err := cl.TryLock(ctx, "stuck", redlock.WithTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	settled(t, c, "stuck", 3)

	// A waiter of another client stands in line meanwhile.
	waiterClient := newClient(t, c, redlock.WithNodeTimeout(holderTau), redlock.WithFencing())
	got := make(chan *redlock.Lock, 1)
	go func() {
		l, err := waiterClient.Lock(ctx, "stuck", redlock.WithTries(1<<20))
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- l
	}()
	waitLine(t, c, "stuck")

	n, err := cl.ForceUnlock(ctx, "stuck")
	if err != nil || n != 3 {
		t.Fatalf("ForceUnlock = %d, %v; want 3, nil", n, err)
	}
	next := <-got // handed the lock long before the stuck holder's minute
	if next == nil {
		t.FailNow()
	}
	if next.Token() <= stuck.Token() {
		t.Errorf("token after the force %d; want > %d: the counter must stay (F4)", next.Token(), stuck.Token())
	}
	if stuck.Err() != nil || !time.Now().Before(stuck.Until()) {
		t.Errorf("the broken holder: Err %v, Until %v; it is not told, and believes it holds", stuck.Err(), stuck.Until())
	}
	if err := stuck.Unlock(ctx); !errors.Is(err, redlock.ErrNotHeld) {
		t.Errorf("the broken holder's Unlock: %v; want ErrNotHeld", err)
	}
	if st := readHolder(t, cl, "stuck"); st.Verdict != redlock.VerdictHeld {
		t.Errorf("after the broken holder's Unlock: %q; want the next holder's lock intact", st.Verdict)
	}
	next.Unlock(ctx)
	settled(t, c, "stuck", 0)
	if n, err := cl.ForceUnlock(ctx, "stuck"); n != 0 || err != nil {
		t.Errorf("ForceUnlock of a free lock = %d, %v; want 0, nil", n, err)
	}
	for _, nd := range c.Nodes() {
		if ctr, _ := nd.Do("EXISTS", redlock.CounterKey("stuck")); ctr != int64(1) {
			t.Errorf("%s: the fencing counter is gone", nd.Addr())
		}
	}
}
