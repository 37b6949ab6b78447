package redistest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// errNoBinary marks a missing redis-server, which New turns into a skip.
var errNoBinary = errors.New("redis-server is missing: install it with `apt-get install redis-server` or set REDIS_SERVER")

type config struct {
	binary   string
	aof      bool
	password string
	tls      *tlsFiles
	// clientCert and clientKey: the certificate nodes require of their
	// clients (WithTLSClientAuth); "": none.
	clientCert, clientKey string
	args                  []string
}

// Option configures the nodes started by Start and New.
type Option func(*config)

// WithAOF enables the append-only file with fsync on every write, as
// ALGORITHM N2 requires for lock state to survive a restart. By default
// persistence is off (--save "" --appendonly no).
func WithAOF() Option { return func(c *config) { c.aof = true } }

// WithPassword sets requirepass; Node.Do authenticates with it.
func WithPassword(pw string) Option { return func(c *config) { c.password = pw } }

// WithTLS starts TLS-only nodes: the node's port (Node.Addr) is its
// --tls-port, the plain port is off, and clients need no certificate of
// their own (--tls-auth-clients no). certFile and keyFile are the server's
// PEM certificate, which must be valid for the IP address 127.0.0.1, and
// key; caFile holds the authority that signed it, which Node.Do trusts.
// WriteTestCerts makes such files. By default nodes speak plain TCP.
func WithTLS(certFile, keyFile, caFile string) Option {
	return func(c *config) { c.tls = &tlsFiles{certFile: certFile, keyFile: keyFile, caFile: caFile} }
}

// WithTLSClientAuth makes TLS nodes (WithTLS) require a client certificate
// signed by their CA (--tls-auth-clients yes); certFile and keyFile are the
// one Node.Do presents (WriteTestPKI's ClientCert and ClientKey). It needs
// WithTLS. By default TLS nodes ask clients for no certificate.
func WithTLSClientAuth(certFile, keyFile string) Option {
	return func(c *config) { c.clientCert, c.clientKey = certFile, keyFile }
}

// WithArgs appends extra redis-server command-line arguments, which override
// the defaults, e.g. WithArgs("--maxmemory-policy", "allkeys-lru").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithBinary sets the redis-server path, overriding $REDIS_SERVER and $PATH.
func WithBinary(path string) Option { return func(c *config) { c.binary = path } }

// Binary returns the redis-server path that would be used: $REDIS_SERVER if
// set, else redis-server on $PATH. The error explains how to install it.
func Binary() (string, error) { return resolveBinary("") }

func resolveBinary(path string) (string, error) {
	if path == "" {
		path = os.Getenv("REDIS_SERVER")
	}
	if path == "" {
		path = "redis-server"
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("redistest: %w (%w)", errNoBinary, err)
	}
	return found, nil
}

// Cluster is a set of independent redis-server nodes (not a Redis Cluster).
type Cluster struct {
	nodes     []*Node
	closeOnce sync.Once
	closeErr  error
}

// Start starts n nodes in parallel and waits until each answers PING with
// PONG (a node still loading its data answers LOADING). On error nothing is
// left running. The caller must call Close.
func Start(n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("redistest: need at least one node, got %d", n)
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clientCert != "" || cfg.clientKey != "" {
		if cfg.tls == nil || cfg.clientCert == "" || cfg.clientKey == "" {
			return nil, fmt.Errorf("redistest: WithTLSClientAuth needs WithTLS, a certificate and a key file")
		}
		files := *cfg.tls
		files.clientCertFile, files.clientKeyFile = cfg.clientCert, cfg.clientKey
		cfg.tls = &files
	}
	bin, err := resolveBinary(cfg.binary)
	if err != nil {
		return nil, err
	}
	c := &Cluster{nodes: make([]*Node, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.nodes[i], errs[i] = startNode(bin, cfg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// New starts n nodes for a test and closes them in t.Cleanup. A missing
// redis-server skips the test, or fails it when CI=true so CI cannot silently
// lose coverage; any other failure fails the test.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c, err := Start(n, opts...)
	switch {
	case errors.Is(err, errNoBinary) && os.Getenv("CI") == "true":
		t.Fatalf("redistest: CI=true but redis-server is unavailable: %v", err)
	case errors.Is(err, errNoBinary):
		t.Skipf("redistest: skipping, redis-server is unavailable: %v", err)
	case err != nil:
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("redistest: close: %v", err)
		}
	})
	return c
}

// Nodes returns the nodes in start order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Addrs returns the "127.0.0.1:port" address of each node in start order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Close kills every process the cluster started (paused ones included),
// waits for them to exit and removes their temporary directories. It is
// idempotent; later calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, n := range c.nodes {
			if n != nil {
				errs = append(errs, n.close())
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
