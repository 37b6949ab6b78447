package redlock

import (
	"context"
	"crypto/rand"
	"errors"
	"time"
)

// observeEvery is how often Observe reads the leader when no announcement
// wakes it: 20 node timeouts (1 s with the default 50 ms). Announcements
// (a new leader's record, a release with nobody in line) wake it at once;
// the poll catches what no announcement tells: a leader that died and
// expired with nobody waiting, and announcements that were lost.
func observeEvery(tau time.Duration) time.Duration { return 20 * tau }

// Observe returns a channel that receives the current leader, then each
// change, until ctx ends or the client is closed; then it is closed
// (ALGORITHM.md V6). A change is a leader of a higher term than every one
// sent before, or the zero Leader{} when a quorum of the nodes says nobody
// leads after a leader was sent (or first, when nobody leads at the start).
// The terms of the leaders it sends strictly increase: an older term is
// never sent after a newer one. While nodes fail or disagree (a hand-over
// under way) it sends nothing and keeps reading.
//
// It reads the leader (as Leader does: from a quorum) at once, whenever a
// new leader or a release is announced on the nodes, and every 20 node
// timeouts otherwise. It only reads, so it never slows the leader; and it
// never waits for the receiver: a value not yet received is replaced by
// the newer one, so a slow receiver gets the latest leader, not every one.
// One goroutine per call, which ends with ctx.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	ch := make(chan Leader, 1)
	go e.observe(ctx, ch)
	return ch
}

func (e *Election) observe(ctx context.Context, ch chan Leader) {
	defer close(ch)
	// Woken by the announcements of the election: a new leader's record
	// (elect.lua publish, on the record's channel) and a release that
	// found nobody in line (release.lua, '1' on the release channel).
	// Reservations for a waiter are announced on its own channel only:
	// the new leader's record follows them within a round trip or two.
	bell := newWakeup("o"+rand.Text(), len(e.c.nodes))
	channels := []string{LockKey(e.lock) + releasedSuffix, LeaderKey(e.name)}
	for _, s := range e.c.wait.subs {
		if s != nil {
			s.add(bell, channels...)
		}
	}
	defer func() {
		for _, s := range e.c.wait.subs {
			if s != nil {
				s.remove(bell, channels...)
			}
		}
	}()
	var (
		highest uint64 // the highest term sent
		leading bool   // the last value sent is a leader
		sent    bool   // something was sent
	)
	every := observeEvery(e.c.cfg.nodeTimeout)
	for {
		l, _, err := e.read(ctx)
		var nle *NoLeaderError
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && l.Token > highest: // V6: only ever a higher term
			highest, leading, sent = l.Token, true, true
			latest(ch, l)
		case errors.As(err, &nle) && nle.Empty >= nle.Quorum && (leading || !sent):
			leading, sent = false, true
			latest(ch, Leader{})
		}
		tick := make(chan struct{})
		t := e.c.clock.AfterFunc(every, func() { close(tick) })
		select {
		case <-tick:
		case <-bell.ch:
		case <-ctx.Done():
		case <-e.c.closing:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// latest puts l on ch without waiting (V6): ch has room for one, and this
// is its only sender, so after dropping a value the receiver has not taken,
// the send cannot block. The receiver sees the values it takes in the
// order they were sent.
func latest(ch chan Leader, l Leader) {
	select {
	case ch <- l:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	ch <- l
}
