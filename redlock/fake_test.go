package redlock

import (
	"context"
	"errors"

	"github.com/gomodule/redigo/redis"
)

// fakePool is a node for unit tests of pure logic: each script call is
// answered by reply, which may move the fake clock to stand for a slow node.
type fakePool struct {
	addr  string
	reply func(cmd string, args []any) (any, error)
}

func (p *fakePool) Addr() string                                { return p.addr }
func (p *fakePool) Get(context.Context) (redis.Conn, error)     { return &fakeConn{p: p}, nil }
func (p *fakePool) Close() error                                { return nil }
func (c *fakeConn) Close() error                                { return nil }
func (c *fakeConn) Err() error                                  { return nil }
func (c *fakeConn) Do(string, ...any) (any, error)              { return nil, errors.New("fake: plain Do is a bug") }
func (c *fakeConn) Send(string, ...any) error                   { return errors.New("fake: Send unsupported") }
func (c *fakeConn) Flush() error                                { return nil }
func (c *fakeConn) Receive() (any, error)                       { return nil, errors.New("fake: Receive unsupported") }
func (c *fakeConn) ReceiveContext(context.Context) (any, error) { return c.Receive() }

type fakeConn struct{ p *fakePool }

func (c *fakeConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.p.reply == nil { // a frozen node: no answer before the deadline
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.p.reply(cmd, args)
}

// scriptOf tells which of our scripts an EVALSHA runs.
func scriptOf(args []any) string {
	switch args[0] {
	case acquireScript.Hash():
		return "acquire"
	case releaseScript.Hash():
		return "release"
	case extendScript.Hash():
		return "extend"
	}
	return "?"
}
