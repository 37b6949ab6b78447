package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Pool is the set of connections to one Redis node that the lock uses.
// Implementations are safe for concurrent use.
type Pool interface {
	// Addr returns the node's address; errors name the node by it.
	Addr() string
	// Get returns a connection to the node, waiting for a free one or a
	// dial no longer than ctx allows. The connection supports
	// redis.ConnWithContext; the caller closes it to give it back.
	Get(ctx context.Context) (redis.Conn, error)
	// Close closes the pool's idle connections and refuses new ones.
	Close() error
}

// Eval runs script s on the node with ctx's deadline on the round trip
// (EVALSHA, then EVAL when the node answers NOSCRIPT, so a warm node costs one
// round trip).
func Eval(ctx context.Context, p Pool, s *redis.Script, keysAndArgs ...any) (any, error) {
	c, err := p.Get(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return s.DoContext(ctx, c, keysAndArgs...)
}

// Do runs one command on the node with ctx's deadline on the round trip.
func Do(ctx context.Context, p Pool, cmd string, args ...any) (any, error) {
	c, err := p.Get(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return redis.DoContext(c, ctx, cmd, args...)
}

// FromRedigo wraps a redigo pool the caller built. The caller keeps
// responsibility for its timeouts; set Wait so Get honours the context.
func FromRedigo(p *redis.Pool, addr string) Pool {
	if p == nil {
		return &badPool{addr: addr, err: fmt.Errorf("pool %q: nil *redis.Pool", addr)}
	}
	return &redigoPool{p: p, addr: addr}
}

// Dialer is a Pool that can open a connection of its own, outside the pool:
// a long-lived subscription that the pool must not hand to anyone else, and
// that its owner closes from another goroutine to stop a blocked Receive.
// Pools from New and FromRedigo implement it.
type Dialer interface {
	Dial(ctx context.Context) (redis.Conn, error)
}

// Validate returns the configuration error of a pool built by New or
// FromRedigo with bad input, or nil.
func Validate(p Pool) error {
	if b, ok := p.(*badPool); ok {
		return b.err
	}
	return nil
}

// Stats returns the redigo pool's statistics for a pool built by New or
// FromRedigo, and false for other pools.
func Stats(p Pool) (redis.PoolStats, bool) {
	if rp, ok := p.(*redigoPool); ok {
		return rp.p.Stats(), true
	}
	return redis.PoolStats{}, false
}

type redigoPool struct {
	p    *redis.Pool
	addr string
	// mu orders Close after the Gets in progress: redigo's Pool.Close
	// races with the lazy set-up of a concurrent first GetContext, and a
	// lock's background requests (stragglers, releases) may still be
	// taking connections when the caller closes the pool.
	mu     sync.RWMutex
	closed bool
}

func (p *redigoPool) Addr() string { return p.addr }

// Dial opens a connection with the pool's dial settings, outside the pool.
func (p *redigoPool) Dial(ctx context.Context) (redis.Conn, error) {
	switch {
	case p.p.DialContext != nil:
		return p.p.DialContext(ctx)
	case p.p.Dial != nil:
		return p.p.Dial()
	}
	return nil, fmt.Errorf("pool %q: the redigo pool has no Dial function", p.addr)
}

func (p *redigoPool) Get(ctx context.Context) (redis.Conn, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, fmt.Errorf("%w: %s", ErrClosed, p.addr)
	}
	return p.p.GetContext(ctx)
}

// Close closes the idle connections, after any Get in progress returned
// (each is bounded by its context); later Gets fail with ErrClosed.
func (p *redigoPool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.p.Close()
}

// dialer opens the connections of a pool built by New or FromURL.
//
// redigo's own TLS (DialUseTLS) runs the handshake under a fixed timer of
// its own (DialTLSHandshakeTimeout, 10 s by default) and never looks at the
// context, so a node that does not answer the ClientHello held every dial,
// and every Close waiting for it, for 10 s. dialer does the TCP connect and
// the handshake itself, in a redigo DialContextFunc, under the dial context;
// redigo then runs AUTH and SELECT under the same context.
type dialer struct {
	addr    string
	timeout time.Duration
	tls     *tls.Config // nil: plain TCP
	opts    []redis.DialOption
	setup   string // the commands redigo sends after connecting, for errors
}

// dial opens one connection: TCP connect, TLS handshake, AUTH and SELECT,
// all within the dial timeout and the caller's context, whichever ends first.
func (d *dialer) dial(ctx context.Context) (redis.Conn, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, d.timeout, &dialTimeoutError{d.timeout})
	defer cancel()
	connected := false
	opts := append(d.opts[:len(d.opts):len(d.opts)], redis.DialContextFunc(
		func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.dialContext(ctx, network, addr)
			connected = err == nil
			return conn, err
		}))
	conn, err := redis.DialContext(ctx, "tcp", d.addr, opts...)
	if err != nil && connected {
		// AUTH or SELECT failed. redigo's errors do not say which step, nor
		// whose deadline ended it. (They never hold the password.)
		return nil, fmt.Errorf("connection set-up (%s) with %s: %w%s", d.setup, d.addr, setupCause(ctx, err), d.certHint(err))
	}
	return conn, err
}

// certHint says what may have happened when the node ended a TLS
// connection during its set-up. Under TLS 1.3 the client's handshake
// completes before the server checks the client's certificate, so a
// refusal comes with the first reply, AUTH's: the alert "certificate
// required" (no certificate given) or "unknown certificate authority", or,
// when the server closed the socket before the alert was read, a reset.
func (d *dialer) certHint(err error) string {
	if d.tls == nil {
		return ""
	}
	noCert := len(d.tls.Certificates) == 0 && d.tls.GetClientCertificate == nil
	msg := err.Error()
	switch {
	case noCert && strings.Contains(msg, "certificate required"):
		return " (the node requires a client certificate)"
	case strings.Contains(msg, "remote error: tls: "), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF):
		if noCert {
			return " (the node ended the connection after the TLS handshake, as it does when it requires a client certificate)"
		}
		return " (the node ended the connection after the TLS handshake, as it does when it refuses the client certificate)"
	}
	return ""
}

// setupCause returns why ctx ended if it ended the set-up command that
// failed with err, else err. redigo reports an ended context as ctx.Err(),
// or, when the read deadline it derived from ctx's deadline fires first, as
// an i/o timeout.
func setupCause(ctx context.Context, err error) error {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	if ctx.Err() == nil {
		dl, ok := ctx.Deadline()
		if !ok || !timeout || time.Now().Before(dl) {
			return err // not the context: an error reply, or the read timeout
		}
		<-ctx.Done() // the deadline has passed: its timer is due
	}
	if timeout || errors.Is(err, ctx.Err()) {
		return context.Cause(ctx)
	}
	return err
}

// keepAlive is redigo's default TCP keep-alive period, which DialContextFunc
// replaces along with redigo's net.Dialer.
const keepAlive = 5 * time.Minute

// dialContext connects to addr and, with TLS, completes the handshake before
// ctx ends.
func (d *dialer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: keepAlive}
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.tls == nil {
		return conn, nil
	}
	cfg := d.tls.Clone()
	if cfg.ServerName == "" { // as redigo: verify the host we dialed
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			// The context ended the handshake: say whether it was the
			// dial timeout or the caller's context.
			err = context.Cause(ctx)
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// dialTimeoutError is the cause of a dial that ran out of the pool's dial
// timeout. It is a timeout (net.Error) and matches
// context.DeadlineExceeded, as a caller's expired deadline would.
type dialTimeoutError struct{ d time.Duration }

func (e *dialTimeoutError) Error() string {
	return fmt.Sprintf("no answer within the dial timeout %v: %v", e.d, context.DeadlineExceeded)
}
func (e *dialTimeoutError) Timeout() bool   { return true }
func (e *dialTimeoutError) Temporary() bool { return true }
func (e *dialTimeoutError) Unwrap() error   { return context.DeadlineExceeded }

// badPool stands for a pool whose options were invalid; it fails every call
// with the validation error instead of panicking.
type badPool struct {
	addr string
	err  error
}

func (p *badPool) Addr() string                            { return p.addr }
func (p *badPool) Get(context.Context) (redis.Conn, error) { return nil, p.err }
func (p *badPool) Close() error                            { return nil }
