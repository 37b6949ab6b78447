package pool_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// tlsACL is a set of TLS-only nodes that require a client certificate,
// whose default user has a password of its own and whose user "locker" may
// do what the lock needs and nothing more.
type tlsACL struct {
	c            *redistest.Cluster
	pki          redistest.TestPKI
	passwordFile string // holds lockerPassword and a newline
}

const (
	lockerPassword = "locker-" + secret
	adminPassword  = "admin-" + secret
)

func startTLSACL(t *testing.T, n int) *tlsACL {
	e := redistest.StartTLSACL(t, n, adminPassword, lockerPassword)
	return &tlsACL{c: e.Cluster, pki: e.PKI, passwordFile: e.PasswordFile}
}

// url returns the rediss:// URL of node i for user "locker", without the
// password, selecting db.
func (e *tlsACL) url(i, db int) string {
	return fmt.Sprintf("rediss://locker@%s/%d", e.c.Addrs()[i], db)
}

// exists counts the keys among keys that exist in database db of node n.
func exists(t *testing.T, n *redistest.Node, db int, keys ...any) int64 {
	t.Helper()
	args := append([]any{fmt.Sprintf("redis.call('SELECT', %d) return redis.call('EXISTS', unpack(KEYS))", db), len(keys)}, keys...)
	v, err := redis.Int64(n.Do("EVAL", args...))
	if err != nil {
		t.Fatalf("EXISTS in db %d of %s: %v", db, n.Addr(), err)
	}
	return v
}

// A lock through pools from rediss:// URLs: the node's certificate checked
// against a CA file, a client certificate presented, an ACL user whose
// password comes from a file, the URL's database selected.
func TestFromURLTLSClientCertACLUser(t *testing.T) {
	t.Parallel()
	e := startTLSACL(t, 3)
	opts := []pool.Option{
		pool.WithPasswordFile(e.passwordFile),
		pool.WithTLSCAFile(e.pki.CA),
		pool.WithTLSClientCert(e.pki.ClientCert, e.pki.ClientKey),
		pool.WithDialTimeout(5 * time.Second), // a loaded machine; not what this test is about
	}
	var pools []pool.Pool
	for i := range 3 {
		p, err := pool.FromURL(e.url(i, 3), opts...)
		if err != nil {
			t.Fatalf("FromURL(%s) = %v", e.url(i, 3), err)
		}
		defer p.Close()
		if p.Addr() != e.c.Addrs()[i] {
			t.Errorf("Addr() = %q; want %q", p.Addr(), e.c.Addrs()[i])
		}
		// Connected here, within the generous dial timeout: the lock's
		// own set-up budget (1s) is not what this test is about.
		if _, err := pool.Do(t.Context(), p, "PING"); err != nil {
			t.Fatalf("PING %s: %v", p.Addr(), err)
		}
		pools = append(pools, p)
	}
	// Logged in as locker, not as the default user: FLUSHALL is not
	// among its commands.
	if _, err := pool.Do(t.Context(), pools[0], "FLUSHALL"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("FLUSHALL as locker = %v; want NOPERM", err)
	}
	cl, err := redlock.New(pools, redlock.WithNodeTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	l, err := cl.TryLock(t.Context(), "tls-url")
	if err != nil {
		t.Fatalf("TryLock over rediss:// with a client certificate as locker = %v", err)
	}
	for _, n := range e.c.Nodes() {
		// TryLock returns at the quorum (A6): the last node may run its
		// SET a moment later.
		k := exists(t, n, 3, redlock.LockKey("tls-url"))
		for deadline := time.Now().Add(10 * time.Second); k != 1 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
			k = exists(t, n, 3, redlock.LockKey("tls-url"))
		}
		if k != 1 {
			t.Errorf("lock key in db 3 of %s: %d; want 1 (the URL's /3)", n.Addr(), k)
		}
		if k := exists(t, n, 0, redlock.LockKey("tls-url")); k != 0 {
			t.Errorf("lock key in db 0 of %s: %d; want 0", n.Addr(), k)
		}
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock = %v", err)
	}
	// Unlock returns at the quorum (A6); the last node may answer a
	// moment later.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range e.c.Nodes() {
		for exists(t, n, 3, redlock.LockKey("tls-url")) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("lock key in db 3 of %s: still there 30s after Unlock", n.Addr())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// The ways a TLS connection is refused say so, name the node and never
// show the password.
func TestFromURLTLSRefusals(t *testing.T) {
	t.Parallel()
	e := startTLSACL(t, 1)
	addr := e.c.Addrs()[0]
	other, err := redistest.WriteTestPKI(t.TempDir()) // an authority the node does not know
	if err != nil {
		t.Fatal(err)
	}
	clientCert := pool.WithTLSClientCert(e.pki.ClientCert, e.pki.ClientKey)
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	for _, tc := range []struct {
		name string
		url  string
		opts []pool.Option
		want []string // in the error, besides the node's address
		as   any      // errors.As target, or nil
	}{
		{"no client certificate", e.url(0, 0), []pool.Option{pool.WithTLSCAFile(e.pki.CA)},
			[]string{"requires a client certificate"}, nil}, // the alert "certificate required", or a reset before it was read
		{"wrong CA", e.url(0, 0), []pool.Option{pool.WithTLSCAFile(other.CA), clientCert},
			[]string{"TLS handshake with " + addr, "unknown authority"}, &uae},
		{"system roots (no CA file)", e.url(0, 0), []pool.Option{clientCert},
			[]string{"TLS handshake with " + addr, "unknown authority"}, &uae},
		{"client certificate of another authority", e.url(0, 0), []pool.Option{pool.WithTLSCAFile(e.pki.CA),
			pool.WithTLSClientCert(other.ClientCert, other.ClientKey)}, []string{"certificate"}, nil},
		{"wrong server name", e.url(0, 0), []pool.Option{pool.WithTLSCAFile(e.pki.CA), clientCert, pool.WithTLSServerName("wrong.example")},
			[]string{"TLS handshake with " + addr, "wrong.example"}, &hne},
		{"wrong password in the URL", "rediss://locker:wrong-" + secret + "@" + addr, []pool.Option{pool.WithTLSCAFile(e.pki.CA), clientCert},
			[]string{"WRONGPASS", "AUTH"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A generous dial timeout: each refusal must be the
			// node's, not a timeout on a loaded machine.
			p, err := pool.FromURL(tc.url, append(tc.opts, pool.WithPasswordFile(e.passwordFile), pool.WithDialTimeout(10*time.Second))...)
			if err != nil {
				t.Fatalf("FromURL = %v", err)
			}
			defer p.Close()
			_, err = pool.Do(t.Context(), p, "PING")
			t.Logf("PING: %v", err)
			if err == nil {
				t.Fatal("PING succeeded")
			}
			for _, w := range append(tc.want, addr) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("PING = %q; want it to say %q", err, w)
				}
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("PING = %v; want a %T in its chain", err, tc.as)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("PING = %q shows the password", err)
			}
		})
	}
	// The server name the certificate is valid for (localhost), asked for
	// instead of the address's host: accepted.
	p, err := pool.FromURL(e.url(0, 0), pool.WithPasswordFile(e.passwordFile), pool.WithTLSCAFile(e.pki.CA), clientCert,
		pool.WithTLSServerName("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, err := redis.String(pool.Do(t.Context(), p, "PING")); err != nil || v != "PONG" {
		t.Fatalf("PING with server name localhost = %q, %v; want PONG", v, err)
	}
}

// Where the password comes from, and which source wins.
func TestFromURLPasswordSources(t *testing.T) {
	// Not parallel: t.Setenv.
	e := startTLSACL(t, 1)
	addr := e.c.Addrs()[0]
	tlsOpts := []pool.Option{pool.WithTLSCAFile(e.pki.CA), pool.WithTLSClientCert(e.pki.ClientCert, e.pki.ClientKey)}
	dir := t.TempDir()
	crlf := filepath.Join(dir, "crlf")
	if err := os.WriteFile(crlf, []byte(lockerPassword+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare")
	if err := os.WriteFile(bare, []byte(lockerPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("wrong-"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QUORUMLOCK_TEST_PASSWORD", lockerPassword)
	t.Setenv("QUORUMLOCK_TEST_WRONG", "wrong-"+secret)
	for _, tc := range []struct {
		name string
		url  string
		opts []pool.Option
		ok   bool
	}{
		{"file, newline", e.url(0, 0), []pool.Option{pool.WithPasswordFile(e.passwordFile)}, true},
		{"file, CRLF", e.url(0, 0), []pool.Option{pool.WithPasswordFile(crlf)}, true},
		{"file, no newline", e.url(0, 0), []pool.Option{pool.WithPasswordFile(bare)}, true},
		{"environment", e.url(0, 0), []pool.Option{pool.WithPasswordEnv("QUORUMLOCK_TEST_PASSWORD")}, true},
		{"the last option wins", e.url(0, 0), []pool.Option{pool.WithPasswordFile(wrong), pool.WithPasswordEnv("QUORUMLOCK_TEST_PASSWORD")}, true},
		{"the last option wins, wrong", e.url(0, 0), []pool.Option{pool.WithPasswordEnv("QUORUMLOCK_TEST_PASSWORD"), pool.WithPasswordFile(wrong)}, false},
		{"the URL's wins", "rediss://locker:" + lockerPassword + "@" + addr, []pool.Option{pool.WithPasswordEnv("QUORUMLOCK_TEST_WRONG")}, true},
		{"the URL's user wins", "rediss://locker:" + lockerPassword + "@" + addr, []pool.Option{pool.WithUsername("nobody")}, true},
		{"user from the option", "rediss://:" + lockerPassword + "@" + addr, []pool.Option{pool.WithUsername("locker")}, true},
		{"wrong file", e.url(0, 0), []pool.Option{pool.WithPasswordFile(wrong)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pool.FromURL(tc.url, append(tlsOpts, tc.opts...)...)
			if err != nil {
				t.Fatalf("FromURL = %v", err)
			}
			defer p.Close()
			// The default user has another password, so PING proves
			// that AUTH as locker succeeded, and NOPERM on FLUSHALL
			// that it was locker.
			_, err = pool.Do(t.Context(), p, "PING")
			if tc.ok && err != nil {
				t.Fatalf("PING = %v; want PONG", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "WRONGPASS")) {
				t.Fatalf("PING = %v; want WRONGPASS", err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("PING = %q shows the password", err)
			}
			if tc.ok {
				if _, err := pool.Do(t.Context(), p, "FLUSHALL"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("FLUSHALL = %v; want NOPERM (logged in as locker)", err)
				}
			}
		})
	}
}
