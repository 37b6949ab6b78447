package redlock

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/pool"
)

// V4: a Leader read that found no leader reports its nodes' failures as
// every other read does (nodeError): a connection whose set-up ran out of
// its dial timeout is a node timeout, never the caller's
// context.DeadlineExceeded, which the caller's own context did not hit.
// Found by review: the read converted pipe.ErrTimeout alone.
func TestNoLeaderReportsNodeFailuresAsOtherReads(t *testing.T) {
	pools := []pool.Pool{&fakePool{addr: "a:1"}, &fakePool{addr: "b:1"}, &fakePool{addr: "c:1"}}
	c := newTestClient(t, pools)
	e, err := c.Election("reads")
	if err != nil {
		t.Fatal(err)
	}
	setup := fmt.Errorf("set-up: %w", context.DeadlineExceeded)
	r := &leaderRead{e: e, q: 2, n: 3, tau: 50 * time.Millisecond,
		errs: []error{nil, setup, pipe.ErrTimeout}, failed: 2, empty: 1}
	nl := r.noLeader()
	if errors.Is(nl, context.DeadlineExceeded) {
		t.Errorf("%v: wraps context.DeadlineExceeded, which the caller's context did not hit", nl)
	}
	if !errors.Is(nl, ErrNodeTimeout) {
		t.Errorf("%v: does not wrap ErrNodeTimeout", nl)
	}
}
