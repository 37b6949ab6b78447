package redlock_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// aclNodes starts n nodes with an ACL user "locker" that has every
// command and the redlock keys but no channel: what Redis 7 gives a new
// user by default (acl-pubsub-default resetchannels).
func aclNodes(t *testing.T, n int) (*redistest.Cluster, []pool.Pool) {
	t.Helper()
	c := redistest.New(t, n)
	for _, node := range c.Nodes() {
		if _, err := node.Do("ACL", "SETUSER", "locker", "on", ">pw", "~redlock:*", "+@all"); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", node.Addr(), err)
		}
	}
	pools := newPools(t, c.Addrs(), pool.WithUsername("locker"), pool.WithPassword("pw"))
	// The premise: this user may not publish.
	if _, err := pool.Do(t.Context(), pools[0], "PUBLISH", redlock.LockKey("x")+":released", "1"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("PUBLISH as the user without channel rights = %v, want NOPERM", err)
	}
	return c, pools
}

// connectionsReceived returns the node's count of accepted connections.
func connectionsReceived(t *testing.T, n *redistest.Node) int64 {
	t.Helper()
	info, err := redis.String(n.Do("INFO", "stats"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			var k int64
			for _, d := range v {
				k = 10*k + int64(d-'0')
			}
			return k
		}
	}
	t.Fatal("no total_connections_received in INFO stats")
	return 0
}

// R5: an ACL user without channel rights can take and release locks, and
// Unlock reports success: the release deleted the key, and the refused
// announcement is not an error.
func TestUnlockSucceedsWithoutChannelRights(t *testing.T) {
	c, pools := aclNodes(t, 3)
	cl := newClientOn(t, pools)
	l, err := cl.TryLock(t.Context(), "acl-unlock")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock as a user without channel rights = %v, want nil (the keys were deleted)", err)
	}
	settled(t, c, "acl-unlock", 0)
}

// C2: a subscription the node refuses (no channel rights) backs off; it
// does not reconnect at once, for ever, waking every waiter each time.
func TestRefusedSubscriptionBacksOff(t *testing.T) {
	c, pools := aclNodes(t, 3)
	holder := newClientOn(t, pools)
	waiter := newClientOn(t, newPools(t, c.Addrs(), pool.WithUsername("locker"), pool.WithPassword("pw")),
		redlock.WithTries(1000), redlock.WithRetryDelay(func(int) time.Duration { return 50 * time.Millisecond }))
	l, err := holder.TryLock(t.Context(), "acl-wait")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(t.Context())
	before := connectionsReceived(t, c.Nodes()[0])
	_, err = waiter.Lock(t.Context(), "acl-wait", redlock.WithTries(40)) // about 2 s of waiting
	after := connectionsReceived(t, c.Nodes()[0])
	if !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("waiter's Lock = %v, want ErrNotAcquired (the lock stays held)", err)
	}
	// The client's lock connection and its subscription, then a few
	// back-off retries: 50ms, 100ms, 200ms, ... within the ~2 s wait.
	if n := after - before; n > 12 {
		t.Fatalf("node accepted %d connections while one waiter waited about 2s: a reconnect storm", n)
	} else {
		t.Logf("connections accepted while waiting: %d", n)
	}
}

// Check reports a node whose ACL user may not use the release channels:
// safe, but waiters poll instead of being woken.
func TestCheckReportsMissingChannelRights(t *testing.T) {
	c, pools := aclNodes(t, 3)
	err := newClientOn(t, pools).Check(t.Context())
	if !errors.Is(err, redlock.ErrDegraded) || errors.Is(err, redlock.ErrUnsafeDeployment) {
		t.Fatalf("Check with no channel rights = %v, want ErrDegraded (and not unsafe)", err)
	}
	for _, n := range c.Nodes() {
		if !strings.Contains(err.Error(), n.Addr()) {
			t.Fatalf("Check = %q, want it to name node %s", err, n.Addr())
		}
	}
	if !strings.Contains(err.Error(), "channel") {
		t.Fatalf("Check = %q, want it to say the channel is not allowed", err)
	}
}
