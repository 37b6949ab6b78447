package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/redlock"
)

// cfgSecret is part of every password of these tests: no output may show
// it.
const cfgSecret = "Cmd-s3cret-pw"

const (
	lockerPW = "locker-" + cfgSecret
	adminPW  = "admin-" + cfgSecret
)

// tlsNodes are TLS-only nodes that require a client certificate, whose
// default user has a password of its own, and whose ACL user "locker" has
// the README's minimal rights, with PTTL for status.
type tlsNodes struct {
	c            *redistest.Cluster
	pki          redistest.TestPKI
	passwordFile string
}

func startTLSNodes(t *testing.T, n int) *tlsNodes {
	e := redistest.StartTLSACL(t, n, adminPW, lockerPW)
	return &tlsNodes{c: e.Cluster, pki: e.PKI, passwordFile: e.PasswordFile}
}

// tlsFlags are the four TLS flags for the nodes: their CA, the client
// certificate and key, and "localhost", a name their certificate holds.
func (e *tlsNodes) tlsFlags() []string {
	return []string{"--tls-ca", e.pki.CA, "--tls-cert", e.pki.ClientCert, "--tls-key", e.pki.ClientKey, "--tls-server-name", "localhost"}
}

// noSecret fails the test if the run's output shows a password.
func noSecret(t *testing.T, what string, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, cfgSecret) {
		t.Errorf("%s shows the password: stdout %q, stderr %q", what, r.stdout, r.stderr)
	}
}

// run and status over TLS with a client certificate, as an ACL user: the
// nodes in REDLOCK_ADDRS as rediss:// URLs and HOST:PORT mixed, the four
// TLS flags, the password from REDLOCK_PASSWORD or --password-file. The
// password shows nowhere.
func TestTLSClientCertURLs(t *testing.T) {
	t.Parallel()
	e := startTLSNodes(t, 3)
	a := e.c.Addrs()
	addrs := "rediss://locker@" + a[0] + "/0,rediss://locker@" + a[1] + "," + a[2]

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"REDLOCK_PASSWORD", []string{"REDLOCK_ADDRS=" + addrs, "REDLOCK_PASSWORD=" + lockerPW}, nil},
		{"--password-file", []string{"REDLOCK_ADDRS=" + addrs}, []string{"--password-file", e.passwordFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "tls-" + strings.Trim(tc.name, "-")
			// --tls for the HOST:PORT node; --user for it too (the
			// URLs name theirs).
			flags := append(append([]string{"--tls", "--user", "locker", "--node-timeout", testNodeTimeout}, e.tlsFlags()...), tc.args...)
			r := runBin(t, tc.env, append(append([]string{"run", "--fencing"}, flags...), name, "--", "sh", "-c", "echo token=$REDLOCK_TOKEN")...)
			noSecret(t, "run", r)
			if r.code != 0 || r.stdout != "token=1\n" || r.stderr != "" {
				t.Fatalf("run: exit %d, stdout %q, stderr %q; want 0, token=1 and nothing on stderr", r.code, r.stdout, r.stderr)
			}
			// The release returns at the quorum (A6); the last node
			// may answer a moment later.
			waitFor(t, waitCap, "the lock key gone from every node", func() bool { return keyCount(t, e.c, name) == 0 })
			r = runBin(t, tc.env, append(append([]string{"status", "--json"}, flags...), name)...)
			noSecret(t, "status", r)
			var rep statusReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || r.stderr != "" {
				t.Fatalf("status: exit %d, stdout %q (%v), stderr %q; want 0 and a report", r.code, r.stdout, err, r.stderr)
			}
			if rep.Verdict != string(redlock.VerdictFree) {
				t.Errorf("status verdict %q; want %q (run released the lock)", rep.Verdict, redlock.VerdictFree)
			}
			for i, n := range rep.Nodes {
				if n.Addr != a[i] || !n.Reachable || n.Counter == nil || *n.Counter != 1 {
					t.Errorf("status node %d: %+v; want %s reachable with fencing counter 1", i, n, a[i])
				}
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		other, err := redistest.WriteTestPKI(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		env := []string{"REDLOCK_ADDRS=" + addrs, "REDLOCK_PASSWORD=" + lockerPW}
		for _, tc := range []struct {
			name  string
			flags []string
			want  string
		}{
			{"wrong CA", []string{"--tls-ca", other.CA, "--tls-cert", e.pki.ClientCert, "--tls-key", e.pki.ClientKey}, "unknown authority"},
			{"no client certificate", []string{"--tls-ca", e.pki.CA}, "client certificate"},
		} {
			r := runBin(t, env, append(append([]string{"status", "--json", "--tls", "--user", "locker"}, tc.flags...), "refused")...)
			noSecret(t, tc.name, r)
			var rep statusReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitError {
				t.Fatalf("%s: status exit %d, stdout %q (%v), stderr %q; want %d and a report", tc.name, r.code, r.stdout, err, r.stderr, exitError)
			}
			for _, n := range rep.Nodes {
				if n.Reachable || n.Error == nil || !strings.Contains(*n.Error, tc.want) || !strings.Contains(*n.Error, n.Addr) {
					t.Errorf("%s: node %s: reachable %v, error %v; want unreachable, an error naming it and saying %q", tc.name, n.Addr, n.Reachable, n.Error, tc.want)
				}
			}
		}
	})
}

// A password in a URL of --addrs works, with a warning that ps shows it;
// the same URL in REDLOCK_ADDRS, which ps does not show, gets none, and
// wins over REDLOCK_PASSWORD. The warning does not show the password.
func TestPasswordInAddrsWarns(t *testing.T) {
	t.Parallel()
	e := startTLSNodes(t, 1)
	url := "rediss://locker:" + lockerPW + "@" + e.c.Addrs()[0]
	flags := append([]string{"--node-timeout", testNodeTimeout}, e.tlsFlags()...)
	r := runBin(t, nil, append(append([]string{"run", "--addrs", url}, flags...), "pw-url", "--", "true")...)
	noSecret(t, "run", r)
	want := fmt.Sprintf("redlock: warning: the password in --addrs (rediss://locker:xxxxx@%s) is visible to other users in ps; use REDLOCK_PASSWORD or --password-file\n", e.c.Addrs()[0])
	if r.code != 0 || r.stderr != want {
		t.Errorf("run --addrs with a password: exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
	}
	// The URL's password wins over REDLOCK_PASSWORD's.
	r = runBin(t, []string{"REDLOCK_ADDRS=" + url, "REDLOCK_PASSWORD=wrong-" + cfgSecret}, append(append([]string{"status"}, flags...), "pw-url")...)
	noSecret(t, "status", r)
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "free") {
		t.Errorf("status with the URL in REDLOCK_ADDRS: exit %d, stdout %q, stderr %q; want 0, free and no warning", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, nil, append(append([]string{"status", "--addrs", "rediss://locker@" + e.c.Addrs()[0], "--password", lockerPW}, flags...), "pw-url")...)
	noSecret(t, "status --password", r)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: the password in --password is visible") {
		t.Errorf("status --password: exit %d, stderr %q; want 0 and a warning", r.code, r.stderr)
	}
}

// Bad addresses, TLS flags and password sources are usage errors: one line
// naming the bad part, before anything is started, never showing the
// password. The help shows no password either.
func TestConfigUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const node = "127.0.0.1:1" // never dialled: each command line is refused first
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"empty address beside a password", []string{"REDLOCK_ADDRS=redis://u:" + lockerPW + "@h:1,,redis://:" + lockerPW + "@h:2"}, nil, `empty address at position 2 in REDLOCK_ADDRS "redis://u:xxxxx@h:1,,redis://:xxxxx@h:2"`},
		// A "," left unescaped in a password splits the URL: its tail is an
		// entry of its own, HOST:PORT with a stray "@", hidden as such.
		{"empty address beside a password split at its comma", []string{"REDLOCK_ADDRS=,redis://:pa," + lockerPW + "@h:1"}, nil, `empty address at position 1 in REDLOCK_ADDRS ",redis://:xxxxx,xxxxx@h:1"`},
		{"bad port in a URL", nil, []string{"--addrs", "redis://u:" + lockerPW + "@h:70000"}, `bad address in --addrs: invalid URL "redis://u:xxxxx@h:70000": port: 70000: want 1 to 65535`},
		{"bad db in a URL", []string{"REDLOCK_ADDRS=" + node + ",rediss://u:" + lockerPW + "@h/zero"}, nil, `bad address in REDLOCK_ADDRS: invalid URL "rediss://u:xxxxx@h/zero": db: "zero"`},
		{"bad scheme", nil, []string{"--addrs", "http://u:" + lockerPW + "@h:1"}, `scheme: "http": want redis or rediss`},
		{"unknown query parameter", nil, []string{"--addrs", "redis://h:1/0?ssl=true"}, `query parameter "ssl": unknown`},
		{"password without URL", nil, []string{"--addrs", "u:" + lockerPW + "@h:1"}, `bad address "xxxxx@h:1" in --addrs: HOST:PORT holds no user or password`},
		{"password without user or URL", nil, []string{"--addrs", lockerPW + "@h:1"}, `bad address "xxxxx@h:1"`},
		{"same node as URL and HOST:PORT", nil, []string{"--addrs", "redis://:" + lockerPW + "@" + node + "/2," + node}, `node 127.0.0.1:1 given twice in --addrs, as "redis://:xxxxx@127.0.0.1:1/2" and "127.0.0.1:1"`},
		{"--tls-cert without --tls-key", nil, []string{"--addrs", node, "--tls", "--tls-cert", "c.pem"}, `--tls-cert "c.pem" and --tls-key "": give both`},
		{"--tls-key without --tls-cert", nil, []string{"--addrs", node, "--tls", "--tls-key", "k.pem"}, `--tls-cert "" and --tls-key "k.pem": give both`},
		{"--tls-ca without TLS", nil, []string{"--addrs", node, "--tls-ca", "ca.pem"}, "--tls-ca without TLS: add --tls, or use rediss:// addresses"},
		{"--tls-server-name without TLS", nil, []string{"--addrs", "redis://" + node, "--tls-server-name", "x"}, "--tls-server-name without TLS"},
		{"--tls with redis://", nil, []string{"--addrs", "redis://:" + lockerPW + "@" + node, "--tls"}, `--tls with redis://:xxxxx@127.0.0.1:1: a redis:// URL is plain TCP; use rediss://`},
		{"missing CA file", nil, []string{"--addrs", "rediss://" + node, "--tls-ca", dir + "/none.pem"}, "TLS CA file: open " + dir + "/none.pem: no such file"},
		{"missing password file", nil, []string{"--addrs", node, "--password-file", dir + "/none"}, "password file: open " + dir + "/none: no such file"},
		{"--password and --password-file", nil, []string{"--addrs", node, "--password", lockerPW, "--password-file", "f"}, "--password and --password-file: give one"},
		{"URL user without password", nil, []string{"--addrs", "redis://locker@" + node}, `user "locker" for redis://locker@127.0.0.1:1: no password: set REDLOCK_PASSWORD or --password-file`},
		{"--user without password", nil, []string{"--addrs", node, "--user", "locker"}, `user "locker" for 127.0.0.1:1: no password`},
	} {
		for _, cmd := range []string{"run", "status"} {
			args := append([]string{cmd}, tc.args...)
			if cmd == "run" {
				args = append(args, "cfg", "--", "true")
			} else {
				args = append(args, "cfg")
			}
			r := runBin(t, tc.env, args...)
			if r.code != exitUsage || r.stdout != "" {
				t.Errorf("%s: %s: exit %d, stdout %q, stderr %q; want %d", tc.name, cmd, r.code, r.stdout, r.stderr, exitUsage)
				continue
			}
			oneLineOf(t, "stderr", r.stderr)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: %s: stderr %q; want it to say %q", tc.name, cmd, r.stderr, tc.want)
			}
			checkFlagSpelling(t, r.stderr)
			noSecret(t, tc.name, r)
		}
	}
	for _, args := range [][]string{{"help"}, {"run", "--help"}, {"status", "--help"}} {
		r := runBin(t, []string{"REDLOCK_PASSWORD=" + lockerPW, "REDLOCK_ADDRS=redis://:" + lockerPW + "@h"}, args...)
		noSecret(t, strings.Join(args, " "), r)
	}
}
