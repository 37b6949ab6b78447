package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
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

// Option configures New.
type Option func(*config)

type config struct {
	username, password string
	passwordSet        bool
	db                 int
	tls                *tls.Config
	dialTimeout        time.Duration
	readTimeout        time.Duration
	writeTimeout       time.Duration
	maxIdle, maxActive int
	idleTimeout        time.Duration
}

// Defaults of New. The lock bounds each request with its own node timeout
// (redlock.WithNodeTimeout), so these timeouts are only the floor under a
// caller that passes a context without a deadline.
const (
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = time.Second
	DefaultWriteTimeout = time.Second
	DefaultMaxIdle      = 32
	DefaultMaxActive    = 256
	DefaultIdleTimeout  = 5 * time.Minute
)

// WithPassword sets the password sent with AUTH on each new connection.
// Default: none.
func WithPassword(password string) Option {
	return func(c *config) { c.password, c.passwordSet = password, true }
}

// WithUsername sets the ACL user for AUTH (Redis 6 and later); it needs
// WithPassword. Default: none (the "default" user).
func WithUsername(username string) Option { return func(c *config) { c.username = username } }

// WithDB selects database db on each new connection. Default: 0.
func WithDB(db int) Option { return func(c *config) { c.db = db } }

// WithTLS dials with TLS using cfg; when cfg.ServerName is empty, the host
// of the address is verified. The handshake is bounded by the dial timeout
// and the caller's context, like the rest of the dial. Default: plain TCP.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithDialTimeout bounds connecting to the node, TLS handshake, AUTH and
// SELECT included; a caller's context that ends sooner ends the dial
// sooner. Default: 1s.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithReadTimeout bounds waiting for one reply when the caller's context
// has a later deadline or none. Default: 1s.
func WithReadTimeout(d time.Duration) Option { return func(c *config) { c.readTimeout = d } }

// WithWriteTimeout bounds writing one request. Default: 1s.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithMaxIdle sets how many idle connections are kept. Default: 32.
func WithMaxIdle(n int) Option { return func(c *config) { c.maxIdle = n } }

// WithMaxActive caps the connections open at once; Get waits (as long as
// its context allows) when the cap is reached. The cap is what keeps
// connections from piling up behind a frozen node. Default: 256.
func WithMaxActive(n int) Option { return func(c *config) { c.maxActive = n } }

func (c *config) validate(addr string) error {
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New("empty address"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial timeout", c.dialTimeout}, {"read timeout", c.readTimeout}, {"write timeout", c.writeTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be > 0", d.name, d.v))
		}
	}
	if c.db < 0 {
		errs = append(errs, fmt.Errorf("db %d: must be >= 0", c.db))
	}
	if c.maxIdle < 0 {
		errs = append(errs, fmt.Errorf("max idle %d: must be >= 0", c.maxIdle))
	}
	if c.maxActive < 1 {
		errs = append(errs, fmt.Errorf("max active %d: must be >= 1", c.maxActive))
	}
	if c.username != "" && !c.passwordSet {
		errs = append(errs, fmt.Errorf("username %q: needs WithPassword", c.username))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pool %q: %w", addr, errors.Join(errs...))
	}
	return nil
}

// New returns a Pool of connections to the Redis node at addr ("host:port").
// Bad options do not panic: the returned pool's Get fails with an error that
// names the bad value, and redlock.New reports it (see Validate).
func New(addr string, opts ...Option) Pool {
	c := config{
		dialTimeout:  DefaultDialTimeout,
		readTimeout:  DefaultReadTimeout,
		writeTimeout: DefaultWriteTimeout,
		maxIdle:      DefaultMaxIdle,
		maxActive:    DefaultMaxActive,
		idleTimeout:  DefaultIdleTimeout,
	}
	for _, o := range opts {
		o(&c)
	}
	if err := c.validate(addr); err != nil {
		return &badPool{addr: addr, err: err}
	}
	d := &dialer{addr: addr, timeout: c.dialTimeout, tls: c.tls}
	d.opts = []redis.DialOption{
		redis.DialReadTimeout(c.readTimeout),
		redis.DialWriteTimeout(c.writeTimeout),
		redis.DialDatabase(c.db),
	}
	var setup []string
	if c.passwordSet {
		d.opts = append(d.opts, redis.DialPassword(c.password))
	}
	if c.password != "" { // redigo sends no AUTH for an empty password
		setup = append(setup, "AUTH")
	}
	if c.username != "" {
		d.opts = append(d.opts, redis.DialUsername(c.username))
	}
	if c.db != 0 {
		setup = append(setup, fmt.Sprintf("SELECT %d", c.db))
	}
	d.setup = strings.Join(setup, ", ")
	rp := &redis.Pool{
		DialContext: d.dial,
		MaxIdle:     c.maxIdle,
		MaxActive:   c.maxActive,
		IdleTimeout: c.idleTimeout,
		Wait:        true,
	}
	return &redigoPool{p: rp, addr: addr}
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

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("pool: closed")

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

// dialer opens the connections of a pool built by New.
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
		return nil, fmt.Errorf("connection set-up (%s) with %s: %w", d.setup, d.addr, setupCause(ctx, err))
	}
	return conn, err
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
