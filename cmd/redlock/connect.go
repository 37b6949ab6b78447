package main

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// dialTimeout bounds opening one connection to a node: the TCP connect, the
// TLS handshake with --tls, and AUTH. It is the pool's default, set
// explicitly so that the help can name it.
const dialTimeout = pool.DefaultDialTimeout

// connCheck is the opening of one connection to each node, in parallel,
// before run's first attempt at the lock. It does two things:
//
//   - The first attempt finds the connections open. With --wait 0 it is the
//     only attempt, and its requests have the node timeout (50ms by default)
//     for one round trip, not for a TCP connect, a TLS handshake and AUTH
//     as well.
//   - When a node cannot be connected to, the reason is known. A lock
//     request queued behind a connection that never completes fails at the
//     node timeout ("no answer within 50ms"), which hides what happened; the
//     connection's own error says it ("TLS handshake with ...: no answer
//     within the dial timeout 1s").
type connCheck struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs map[string]error // by node address: why its connection failed
}

// checkConnections opens a connection to every node and returns once each
// has connected or failed, or as soon as a quorum has connected: a frozen
// node must not delay the start by a dial timeout when the lock needs only
// a quorum. The dials still running go on in the background, each within
// the dial timeout.
func checkConnections(pools []pool.Pool) *connCheck {
	cc := &connCheck{errs: map[string]error{}}
	connected := make(chan bool, len(pools))
	for _, p := range pools {
		cc.wg.Go(func() {
			// The pool ends the dial at the dial timeout and says so;
			// this deadline is only a backstop past it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*dialTimeout)
			defer cancel()
			c, err := p.Get(ctx)
			if err == nil {
				c.Close() // back to the pool's idle connections: the lock takes it
			} else {
				cc.mu.Lock()
				cc.errs[p.Addr()] = err
				cc.mu.Unlock()
			}
			connected <- err == nil
		})
	}
	q := len(pools)/2 + 1
	for ok, done := 0, 0; ok < q && done < len(pools); done++ {
		if <-connected {
			ok++
		}
	}
	return cc
}

// explain returns the message of a failed acquisition, err, in which each
// node that failed at the node timeout while its connection could not be
// opened is reported with the connection's error instead. It waits for the
// dials still running, at most the dial timeout.
func (cc *connCheck) explain(err error) string {
	msg := libMsg(err)
	var qe *redlock.QuorumError
	if !errors.As(err, &qe) || qe.Nodes == nil {
		return msg
	}
	cc.wg.Wait()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, e := range qe.Nodes.Errors {
		var ne *redlock.NodeError
		if !errors.As(e, &ne) || !errors.Is(ne, redlock.ErrNodeTimeout) {
			continue
		}
		if cerr := cc.errs[ne.Addr]; cerr != nil {
			msg = strings.Replace(msg, ne.Error(), "node "+ne.Addr+": cannot connect: "+cerr.Error(), 1)
		}
	}
	return msg
}
