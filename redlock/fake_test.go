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

func (p *fakePool) Addr() string                            { return p.addr }
func (p *fakePool) Get(context.Context) (redis.Conn, error) { return &fakeConn{p: p}, nil }
func (p *fakePool) Close() error                            { return nil }

// fakeConn answers pipelined requests in order: Send computes the reply,
// Receive hands them out.
type fakeConn struct {
	p       *fakePool
	mu      sync.Mutex
	replies []fakeReply
	ready   chan struct{}
}

type fakeReply struct {
	v      any
	err    error
	frozen bool
}

func (c *fakeConn) Send(cmd string, args ...any) error {
	r := fakeReply{v: "OK"}
	switch {
	case cmd == "SCRIPT":
	case c.p.reply == nil:
		r = fakeReply{frozen: true}
	default:
		r.v, r.err = c.p.reply(cmd, args)
		if r.err == errFrozen {
			r = fakeReply{frozen: true}
		}
	}
	c.mu.Lock()
	c.replies = append(c.replies, r)
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) ReceiveWithTimeout(d time.Duration) (any, error) {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		if len(c.replies) > 0 && !c.replies[0].frozen {
			r := c.replies[0]
			c.replies = c.replies[1:]
			c.mu.Unlock()
			if r.err != nil {
				return nil, r.err
			}
			return r.v, nil
		}
		c.mu.Unlock()
		if !time.Now().Before(deadline) {
			return nil, os.ErrDeadlineExceeded
		}
		select {
		case <-c.p.thaw: // nil: never
			return nil, os.ErrDeadlineExceeded
		case <-time.After(time.Millisecond):
		}
	}
}

func (c *fakeConn) DoWithTimeout(time.Duration, string, ...any) (any, error) {
	return nil, errors.New("fake: Do is not used by the pipeline")
}
func (c *fakeConn) Do(string, ...any) (any, error) { return nil, errors.New("fake: plain Do is a bug") }
func (c *fakeConn) Flush() error                   { return nil }
func (c *fakeConn) Receive() (any, error)          { return c.ReceiveWithTimeout(time.Hour) }
func (c *fakeConn) Close() error                   { return nil }
func (c *fakeConn) Err() error                     { return nil }

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
