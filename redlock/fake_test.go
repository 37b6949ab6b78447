package redlock

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
)

// fakePool is a node for unit tests of pure logic: each script call is
// answered by reply, which may move the fake clock to stand for a slow node;
// a nil reply is a frozen node that never answers.
type fakePool struct {
	addr  string
	reply func(cmd string, args []any) (any, error)
	// thaw, if set, ends every frozen wait at once: a test lets its
	// frozen nodes go before it closes the client.
	thaw chan struct{}
}

// errFrozen, returned by a reply func, freezes that one request.
var errFrozen = errors.New("fake: frozen")

func (p *fakePool) Addr() string { return p.addr }
func (p *fakePool) Get(context.Context) (redis.Conn, error) {
	return &fakeConn{replyQueue: replyQueue{thaw: p.thaw}, p: p}, nil
}
func (p *fakePool) Close() error { return nil }

// fakeConn answers pipelined requests in order: Send computes the reply,
// Receive hands them out.
type fakeConn struct {
	replyQueue
	p *fakePool
}

func (c *fakeConn) Send(cmd string, args ...any) error {
	r := c.queue()
	switch {
	case cmd == "SCRIPT":
		r.settle("OK", nil)
	case c.p.reply == nil: // frozen: never settled
	default:
		if v, err := c.p.reply(cmd, args); err != errFrozen {
			r.settle(v, err)
		}
	}
	return nil
}

// replyQueue is the pipeline of a fake connection (fakeConn, and
// slowConn in linemodel_bridge_test.go): Send queues a reply, settled
// then or later (a frozen node's never is); Receive hands them out in the
// order sent, each once it is settled, or none by the deadline. Its
// connection's Send is the only thing a fake adds.
type replyQueue struct {
	thaw    <-chan struct{} // closed: every wait ends at once (nil: never)
	mu      sync.Mutex
	replies []*fakeReply // in the order sent
}

type fakeReply struct {
	done chan struct{} // closed once v and err are set
	v    any
	err  error
}

// queue adds a reply, to be settled, after those sent before.
func (q *replyQueue) queue() *fakeReply {
	r := &fakeReply{done: make(chan struct{})}
	q.mu.Lock()
	q.replies = append(q.replies, r)
	q.mu.Unlock()
	return r
}

// settle sets the reply; Receive may hand it out.
func (r *fakeReply) settle(v any, err error) {
	r.v, r.err = v, err
	close(r.done)
}

func (q *replyQueue) ReceiveWithTimeout(d time.Duration) (any, error) {
	deadline := time.Now().Add(d)
	for {
		q.mu.Lock()
		var r *fakeReply
		if len(q.replies) > 0 {
			r = q.replies[0]
		}
		q.mu.Unlock()
		if r != nil {
			select {
			case <-r.done: // settled: handed out, even past the deadline
			default:
				select {
				case <-r.done:
				case <-q.thaw:
					return nil, os.ErrDeadlineExceeded
				case <-time.After(time.Until(deadline)):
					return nil, os.ErrDeadlineExceeded
				}
			}
			q.mu.Lock()
			q.replies = q.replies[1:]
			q.mu.Unlock()
			if r.err != nil {
				return nil, r.err
			}
			return r.v, nil
		}
		if !time.Now().Before(deadline) {
			return nil, os.ErrDeadlineExceeded
		}
		select {
		case <-q.thaw:
			return nil, os.ErrDeadlineExceeded
		case <-time.After(time.Millisecond):
		}
	}
}

func (q *replyQueue) DoWithTimeout(time.Duration, string, ...any) (any, error) {
	return nil, errors.New("fake: Do is not used by the pipeline")
}
func (q *replyQueue) Do(string, ...any) (any, error) {
	return nil, errors.New("fake: plain Do is a bug")
}
func (q *replyQueue) Flush() error          { return nil }
func (q *replyQueue) Receive() (any, error) { return q.ReceiveWithTimeout(time.Hour) }
func (q *replyQueue) Close() error          { return nil }
func (q *replyQueue) Err() error            { return nil }

// scriptOf tells which of our scripts an EVALSHA runs; a SET is the
// acquisition without fencing.
func scriptOf(cmd string, args []any) string {
	if cmd == "SET" {
		return "acquire"
	}
	switch args[0] {
	case acquireHash:
		return "acquire"
	case releaseHash:
		return "release"
	case extendHash:
		return "extend"
	case fenceHash:
		return "fence"
	case lineHash:
		return "line"
	}
	return "?"
}

// newTestClient is New for unit tests, closed when the test ends.
func newTestClient(t *testing.T, pools []pool.Pool, opts ...Option) *Client {
	t.Helper()
	c, err := New(pools, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
