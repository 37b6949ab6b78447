package pool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Option configures New and FromURL.
type Option func(*config)

// passwordSource says where the password comes from: the last of
// WithPassword, WithPasswordFile and WithPasswordEnv given wins.
type passwordSource int

const (
	passwordNone passwordSource = iota
	passwordLiteral
	passwordFile
	passwordEnv
)

type config struct {
	username string
	// password is the password itself (passwordLiteral), or the file or
	// the environment variable that holds it, read by resolve.
	password       string
	passwordSource passwordSource
	db             int
	tls            *tls.Config
	tlsFiles       tlsFiles
	dialTimeout    time.Duration
	readTimeout    time.Duration
	writeTimeout   time.Duration
	maxIdle        int
	maxActive      int
	idleTimeout    time.Duration
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
// A command line is visible to every user of the machine (ps): prefer
// WithPasswordFile or WithPasswordEnv for a password that comes from
// outside the program. Of WithPassword, WithPasswordFile and
// WithPasswordEnv, the last one given wins; a password in FromURL's URL
// wins over all three. Default: none.
func WithPassword(password string) Option {
	return func(c *config) { c.password, c.passwordSource = password, passwordLiteral }
}

// WithPasswordFile reads the password from the file at path, once, when
// the pool is built; one trailing newline ("\n" or "\r\n") is dropped. An
// unreadable or empty file, or one of more than one line, is an error that
// names the file, never what it holds. Precedence as for WithPassword.
// Default: none.
func WithPasswordFile(path string) Option {
	return func(c *config) { c.password, c.passwordSource = path, passwordFile }
}

// WithPasswordEnv reads the password from the environment variable name,
// once, when the pool is built. A variable that is unset or empty is an
// error that names it. Precedence as for WithPassword. Default: none.
func WithPasswordEnv(name string) Option {
	return func(c *config) { c.password, c.passwordSource = name, passwordEnv }
}

// WithUsername sets the ACL user for AUTH (Redis 6 and later); it needs a
// password. A user in FromURL's URL wins over it. Default: none (the
// "default" user).
func WithUsername(username string) Option { return func(c *config) { c.username = username } }

// WithDB selects database db on each new connection. A /DB in FromURL's
// URL wins over it. Default: 0.
func WithDB(db int) Option { return func(c *config) { c.db = db } }

// WithTLS dials with TLS using cfg; when cfg.ServerName is empty, the host
// of the address is verified. The handshake is bounded by the dial timeout
// and the caller's context, like the rest of the dial. WithTLSCAFile,
// WithTLSClientCert and WithTLSServerName set their fields on a copy of cfg;
// cfg itself is never modified. Default: plain TCP.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithDialTimeout bounds connecting to the node, TLS handshake, AUTH and
// SELECT included; a caller's context that ends sooner ends the dial
// sooner. A dial_timeout in FromURL's URL wins over it. Default: 1s.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithReadTimeout bounds waiting for one reply when the caller's context
// has a later deadline or none. A read_timeout in FromURL's URL wins over
// it. Default: 1s.
func WithReadTimeout(d time.Duration) Option { return func(c *config) { c.readTimeout = d } }

// WithWriteTimeout bounds writing one request. A write_timeout in FromURL's
// URL wins over it. Default: 1s.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithMaxIdle sets how many idle connections are kept. Default: 32.
func WithMaxIdle(n int) Option { return func(c *config) { c.maxIdle = n } }

// WithMaxActive caps the connections open at once; Get waits (as long as
// its context allows) when the cap is reached. The cap is what keeps
// connections from piling up behind a frozen node. Default: 256.
func WithMaxActive(n int) Option { return func(c *config) { c.maxActive = n } }

// newConfig returns the defaults with opts applied, for New and FromURL.
func newConfig(opts []Option) config {
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
	return c
}

// settings are what resolve makes of a config: the files and the
// environment read, the TLS configuration built.
type settings struct {
	password    string
	passwordSet bool
	tls         *tls.Config // nil: plain TCP
}

// resolve validates c, once, and reads what it names: the password's file
// or variable, the TLS files. tlsOn says TLS is asked for by other means
// (a rediss:// URL). Errors name the bad value, the file or the variable,
// never a password.
func (c *config) resolve(addr string, tlsOn bool) (settings, error) {
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
	var s settings
	var err error
	if s.password, s.passwordSet, err = c.readPassword(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.username != "" && c.passwordSource == passwordNone:
		errs = append(errs, fmt.Errorf("username %q: needs a password (WithPassword, WithPasswordFile, WithPasswordEnv or the URL's)", c.username))
	case c.username != "" && s.passwordSet && s.password == "":
		// redigo sends no AUTH for an empty password: the user would be
		// silently ignored.
		errs = append(errs, fmt.Errorf("username %q: empty password", c.username))
	}
	if tlsOn || c.tls != nil || c.tlsFiles.set() {
		if s.tls, err = c.tlsFiles.config(c.tls); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return settings{}, fmt.Errorf("%w: node %q: %w", ErrInvalidOption, addr, errors.Join(errs...))
	}
	return s, nil
}

// newPool builds the pool of New and FromURL from c, applied and possibly
// overridden by a URL.
func newPool(addr string, c config, tlsOn bool) (Pool, error) {
	s, err := c.resolve(addr, tlsOn)
	if err != nil {
		return nil, err
	}
	d := &dialer{addr: addr, timeout: c.dialTimeout, tls: s.tls}
	d.opts = []redis.DialOption{
		redis.DialReadTimeout(c.readTimeout),
		redis.DialWriteTimeout(c.writeTimeout),
		redis.DialDatabase(c.db),
	}
	var setup []string
	if s.passwordSet {
		d.opts = append(d.opts, redis.DialPassword(s.password))
	}
	if s.password != "" { // redigo sends no AUTH for an empty password
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
	return &redigoPool{p: rp, addr: addr}, nil
}

// New returns a Pool of connections to the Redis node at addr ("host:port").
// It reads the files and the environment variable its options name, once.
// Bad options do not panic: the returned pool's Get fails with an error
// that wraps ErrInvalidOption and names the bad value, and redlock.New
// reports it (see Validate). FromURL takes a redis:// or rediss:// URL
// instead, and returns the error.
func New(addr string, opts ...Option) Pool {
	p, err := newPool(addr, newConfig(opts), false)
	if err != nil {
		return &badPool{addr: addr, err: err}
	}
	return p
}
