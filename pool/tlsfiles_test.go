package pool_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
)

// Files and variables that cannot give a password or a certificate are
// refused when the pool is built, by an error that names the file or the
// variable and never shows what it holds.
func TestSecretSourcesRejected(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := write("empty", "")
	newline := write("newline", "\n")
	twoLines := write("two-lines", secret+"\nsecond-"+secret+"\n")
	notPEM := write("not-pem.crt", "-----BEGIN NOTHING-----\n"+secret+"\n")
	pki, err := redistest.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("QUORUMLOCK_TEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		opts []pool.Option
		want string
	}{
		{"missing password file", []pool.Option{pool.WithPasswordFile(dir + "/none")}, "password file: open " + dir + "/none: no such file"},
		{"password file is a directory", []pool.Option{pool.WithPasswordFile(dir)}, "password file: read " + dir},
		{"empty password file", []pool.Option{pool.WithPasswordFile(empty)}, "password file " + empty + ": empty"},
		{"password file of a newline", []pool.Option{pool.WithPasswordFile(newline)}, "password file " + newline + ": empty"},
		{"password file of two lines", []pool.Option{pool.WithPasswordFile(twoLines)}, "password file " + twoLines + ": more than one line"},
		{"unset variable", []pool.Option{pool.WithPasswordEnv("QUORUMLOCK_TEST_UNSET")}, "password environment variable QUORUMLOCK_TEST_UNSET: not set"},
		{"empty variable", []pool.Option{pool.WithPasswordEnv("QUORUMLOCK_TEST_EMPTY")}, "password environment variable QUORUMLOCK_TEST_EMPTY: empty"},
		{"no variable name", []pool.Option{pool.WithPasswordEnv("")}, "password environment variable: empty name"},
		{"missing CA file", []pool.Option{pool.WithTLSCAFile(dir + "/none.crt")}, "TLS CA file: open " + dir + "/none.crt"},
		{"CA file without a certificate", []pool.Option{pool.WithTLSCAFile(notPEM)}, "TLS CA file " + notPEM + ": no PEM certificate in it"},
		{"client certificate without key", []pool.Option{pool.WithTLSClientCert(pki.ClientCert, "")}, `TLS client certificate "` + pki.ClientCert + `" and key "": both files are needed`},
		{"client key as certificate", []pool.Option{pool.WithTLSClientCert(pki.ClientKey, pki.ClientKey)}, "TLS client certificate " + pki.ClientKey + " and key " + pki.ClientKey + ": tls:"},
		{"client key not matching", []pool.Option{pool.WithTLSClientCert(pki.ClientCert, pki.ServerKey)}, "TLS client certificate " + pki.ClientCert + " and key " + pki.ServerKey + ": tls: private key does not match"},
		{"missing client key", []pool.Option{pool.WithTLSClientCert(pki.ClientCert, dir+"/none.key")}, dir + "/none.key: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pool.Validate(pool.New("127.0.0.1:1", tc.opts...))
			if err == nil || !errors.Is(err, pool.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error wrapping ErrInvalidOption, saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("New: %q shows what the file holds", err)
			}
			_, err = pool.FromURL("rediss://127.0.0.1:1", tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromURL: %v; want it to say %q", err, tc.want)
			}
		})
	}
}

// The TLS file options turn TLS on in New as well, with a host:port address.
func TestNewWithTLSFiles(t *testing.T) {
	t.Parallel()
	pki, err := redistest.WriteTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := redistest.New(t, 1, redistest.WithTLS(pki.ServerCert, pki.ServerKey, pki.CA), redistest.WithTLSClientAuth(pki.ClientCert, pki.ClientKey))
	p := pool.New(c.Addrs()[0], pool.WithTLSCAFile(pki.CA), pool.WithTLSClientCert(pki.ClientCert, pki.ClientKey),
		pool.WithDialTimeout(5*time.Second))
	defer p.Close()
	if err := pool.Validate(p); err != nil {
		t.Fatal(err)
	}
	if v, err := redis.String(pool.Do(t.Context(), p, "PING")); err != nil || v != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", v, err)
	}
}
