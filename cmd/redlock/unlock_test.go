package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// M3: unlock --force shows the holder; without --yes it deletes nothing
// and exits 2; with --yes it removes the lock on every node (exit 0), keeps
// the fencing counter, and the broken holder cannot touch the next
// holder's key; with nothing held it exits 1.
func TestUnlockForce(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	cl := newClient(t, c)
	stuck := holdLock(t, cl, "stuck", redlock.WithTTL(time.Minute), redlock.WithFencing(), redlock.WithHolder("stuck job"))
	waitFor(t, 3*time.Second, "key on every node", func() bool { return keyCount(t, c, "stuck") == 3 })

	r := runBin(t, nil, "unlock", "--force", "--addrs", addrs(c), "stuck")
	if r.code != exitUsage || !strings.Contains(r.stdout, `holder: "stuck job"`) || !strings.Contains(r.stderr, "nothing deleted: --yes deletes lock \"stuck\" on the 3 nodes") {
		t.Errorf("without --yes: exit %d, stdout %s, stderr %q; want %d, the holder shown, nothing deleted", r.code, r.stdout, r.stderr, exitUsage)
	}
	if k := keyCount(t, c, "stuck"); k != 3 {
		t.Fatalf("without --yes the key is on %d nodes; want 3", k)
	}

	r = runBin(t, nil, "unlock", "--force", "--yes", "--addrs", addrs(c), "stuck")
	if r.code != exitOK || !strings.Contains(r.stdout, `holder: "stuck job"`) || !strings.Contains(r.stdout, `deleted lock "stuck" on 3 of 3 nodes`) {
		t.Errorf("--yes: exit %d, stdout %s, stderr %q; want 0, the holder, deleted on 3", r.code, r.stdout, r.stderr)
	}
	if k := keyCount(t, c, "stuck"); k != 0 {
		t.Errorf("after --yes the key is on %d nodes; want none", k)
	}
	for _, n := range c.Nodes() {
		if ctr, err := redis.Uint64(n.Do("GET", redlock.CounterKey("stuck"))); err != nil || ctr < stuck.Token() {
			t.Errorf("%s: fencing counter %d, %v; want kept at %d or more (F4)", n.Addr(), ctr, err, stuck.Token())
		}
	}
	next := holdLock(t, cl, "stuck", redlock.WithFencing())
	if next.Token() <= stuck.Token() {
		t.Errorf("next token %d; want > %d", next.Token(), stuck.Token())
	}
	if err := stuck.Unlock(context.Background()); !errors.Is(err, redlock.ErrNotHeld) {
		t.Errorf("the broken holder's Unlock: %v; want ErrNotHeld", err)
	}
	if k := keyCount(t, c, "stuck"); k < 2 {
		t.Errorf("the next holder's key on %d nodes after the broken holder's Unlock; want it kept", k)
	}
	next.Unlock(context.Background())
	waitFor(t, 3*time.Second, "key gone", func() bool { return keyCount(t, c, "stuck") == 0 })

	r = runBin(t, nil, "unlock", "--force", "--yes", "--addrs", addrs(c), "stuck")
	if r.code != exitNothingHeld || !strings.Contains(r.stderr, "not held") {
		t.Errorf("nothing held: exit %d, stderr %q; want %d", r.code, r.stderr, exitNothingHeld)
	}

	// Fewer than a quorum answering: nothing can be said, exit 4.
	c.Nodes()[1].Kill()
	c.Nodes()[2].Kill()
	if r = runBin(t, nil, "unlock", "--force", "--yes", "--addrs", addrs(c), "stuck"); r.code != exitError {
		t.Errorf("2 of 3 down: exit %d, stderr %q; want %d", r.code, r.stderr, exitError)
	}
}

// M1: run --holder records the label with the lock; status, run by the
// command under the lock, shows it.
func TestRunRecordsHolder(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	env := []string{"REDLOCK_ADDRS=" + addrs(c)}
	r := runBin(t, env, "run", "--node-timeout", testNodeTimeout, "--holder", "cron job", "rh", "--", binPath, "status", "--json", "rh")
	if r.code != exitOK {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status output %q: %v", r.stdout, err)
	}
	if rep.Verdict != string(redlock.VerdictHeld) || rep.Holder == nil || rep.Holder.Label != "cron job" || rep.Holder.PID == 0 {
		t.Errorf("status under run --holder: verdict %q, holder %+v; want held by the label", rep.Verdict, rep.Holder)
	}
}
