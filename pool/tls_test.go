package pool_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

// C3: a node that does not speak TLS never answers the ClientHello: the
// handshake must end at the dial timeout (or the caller's context, if that
// ends first), not at redigo's own 10 s handshake timeout.
func TestTLSHandshakeBoundedByDialTimeoutAndContext(t *testing.T) {
	t.Parallel()
	addr := redistest.New(t, 1).Addrs()[0] // plain TCP: it never answers a ClientHello
	insecure := &tls.Config{InsecureSkipVerify: true}
	// bound is generous for a noisy machine; without the fix each call
	// takes redigo's 10 s handshake timeout.
	const bound = 3 * time.Second

	check := func(t *testing.T, what string, dial func() (redis.Conn, error), wantInMsg ...string) error {
		t.Helper()
		start := time.Now()
		conn, err := dial()
		elapsed := time.Since(start)
		if err == nil {
			conn.Close()
			t.Fatalf("%s to a plain node with TLS succeeded", what)
		}
		t.Logf("%s: %v after %v", what, err, elapsed.Round(time.Millisecond))
		if elapsed > bound {
			t.Errorf("%s took %v, want < %v: the TLS handshake is not bounded", what, elapsed, bound)
		}
		for _, s := range append([]string{"TLS handshake", addr}, wantInMsg...) {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", what, err, s)
			}
		}
		return err
	}

	t.Run("dial timeout", func(t *testing.T) {
		t.Parallel()
		p := pool.New(addr, pool.WithTLS(insecure), pool.WithDialTimeout(200*time.Millisecond))
		defer p.Close()
		err := check(t, "Get", func() (redis.Conn, error) { return p.Get(t.Context()) }, "dial timeout 200ms")
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get: error %v is not a timeout (net.Error Timeout, context.DeadlineExceeded)", err)
		}
		d, ok := p.(pool.Dialer)
		if !ok {
			t.Fatal("pool.New does not implement pool.Dialer")
		}
		check(t, "Dial", func() (redis.Conn, error) { return d.Dial(t.Context()) }, "dial timeout 200ms")
	})

	t.Run("caller deadline first", func(t *testing.T) {
		t.Parallel()
		p := pool.New(addr, pool.WithTLS(insecure), pool.WithDialTimeout(time.Minute))
		defer p.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		err := check(t, "Get", func() (redis.Conn, error) { return p.Get(ctx) })
		if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "dial timeout") {
			t.Errorf("Get: %v; want the caller's context.DeadlineExceeded, not the dial timeout", err)
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		p := pool.New(addr, pool.WithTLS(insecure), pool.WithDialTimeout(time.Minute))
		defer p.Close()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		d := p.(pool.Dialer)
		err := check(t, "Dial", func() (redis.Conn, error) { return d.Dial(ctx) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v; want context.Canceled", err)
		}
	})
}

// tlsFiles writes a throw-away CA and server certificate and returns the
// files and a client configuration that trusts the CA.
func tlsFiles(t *testing.T) (cert, key, ca string, client *tls.Config) {
	t.Helper()
	cert, key, ca, err := redistest.WriteTestCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", ca)
	}
	return cert, key, ca, &tls.Config{RootCAs: roots}
}

// A real TLS node: the pool verifies it against the CA (the server name
// taken from the address) and AUTH, SELECT and the Dialer keep working.
func TestTLSNode(t *testing.T) {
	t.Parallel()
	cert, key, ca, client := tlsFiles(t)
	c := redistest.New(t, 1, redistest.WithTLS(cert, key, ca), redistest.WithPassword("pw"))
	addr := c.Addrs()[0]

	p := pool.New(addr, pool.WithTLS(client), pool.WithPassword("pw"), pool.WithDB(2),
		pool.WithDialTimeout(2*time.Second))
	defer p.Close()
	if v, err := redis.String(pool.Do(t.Context(), p, "PING")); err != nil || v != "PONG" {
		t.Fatalf("PING over TLS = %q, %v; want PONG", v, err)
	}
	if _, err := pool.Do(t.Context(), p, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n, err := redis.Int(c.Nodes()[0].Do("DBSIZE")); err != nil || n != 0 {
		t.Fatalf("DBSIZE of db 0 = %d, %v; want 0 (the pool writes to db 2)", n, err)
	}
	conn, err := p.(pool.Dialer).Dial(t.Context())
	if err != nil {
		t.Fatalf("Dial over TLS: %v", err)
	}
	defer conn.Close()
	if v, err := redis.String(redis.DoContext(conn, t.Context(), "GET", "k")); err != nil || v != "v" {
		t.Fatalf("GET on the dialed connection = %q, %v; want v (db 2)", v, err)
	}
	if client.ServerName != "" {
		t.Errorf("the caller's tls.Config was modified: ServerName %q", client.ServerName)
	}

	t.Run("wrong password", func(t *testing.T) {
		p := pool.New(addr, pool.WithTLS(client), pool.WithPassword("not-the-password"))
		defer p.Close()
		_, err := pool.Do(t.Context(), p, "PING")
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), "AUTH") ||
			strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("PING with a wrong password = %v; want WRONGPASS from AUTH, without the password", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		p := pool.New(addr, pool.WithTLS(&tls.Config{}), pool.WithPassword("pw")) // system roots
		defer p.Close()
		var uae x509.UnknownAuthorityError
		if _, err := pool.Do(t.Context(), p, "PING"); !errors.As(err, &uae) || !strings.Contains(err.Error(), "TLS handshake with "+addr) {
			t.Fatalf("PING with an untrusted certificate = %v; want a TLS handshake error, unknown authority", err)
		}
	})
}

// C3: AUTH after the handshake is bounded by the same dial timeout: a TLS
// server that completes the handshake and then never answers.
func TestTLSSetupAfterHandshakeBounded(t *testing.T) {
	t.Parallel()
	cert, key, _, client := tlsFiles(t)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.Close()
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.(*tls.Conn).Handshake()
				io.Copy(io.Discard, conn) // read AUTH, never answer
			})
		}
	})
	const password = "hunter2-secret"
	p := pool.New(l.Addr().String(), pool.WithTLS(client), pool.WithPassword(password),
		pool.WithDialTimeout(200*time.Millisecond), pool.WithReadTimeout(time.Minute))
	defer p.Close()
	start := time.Now()
	_, err = p.Get(t.Context())
	elapsed := time.Since(start)
	t.Logf("Get: %v after %v", err, elapsed.Round(time.Millisecond))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "AUTH") ||
		!strings.Contains(err.Error(), "dial timeout 200ms") || strings.Contains(err.Error(), password) {
		t.Errorf("Get = %v; want AUTH ended by the dial timeout 200ms, without the password", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Get took %v; want < 3s (dial timeout 200ms)", elapsed)
	}
}
