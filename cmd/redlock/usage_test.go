package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// Every bad command line exits 2 with one line on stderr naming the bad
// value; nothing is started and no lock key is written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 5)
	a := addrs(c)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  []string
		args []string // {{M}} is replaced by a marker file the command would create
		lock string   // the lock name, checked for keys; "" for none
		want string   // in the stderr line
	}{
		{"unknown flag", nil, []string{"run", "--addrs", a, "--bogus", "b1", "--", "touch", "{{M}}"}, "b1", "-bogus"},
		{"no addresses", nil, []string{"run", "b2", "--", "touch", "{{M}}"}, "b2", "REDLOCK_ADDRS"},
		{"empty --addrs", []string{"REDLOCK_ADDRS=" + a}, []string{"run", "--addrs", "", "b3", "--", "touch", "{{M}}"}, "b3", "no Redis addresses"},
		{"empty address", nil, []string{"run", "--addrs", c.Addrs()[0] + ",," + c.Addrs()[1], "b4", "--", "touch", "{{M}}"}, "b4", "empty address at position 2"},
		{"trailing comma", []string{"REDLOCK_ADDRS=" + a + ","}, []string{"run", "b5", "--", "touch", "{{M}}"}, "b5", "empty address at position 6"},
		{"address without port", nil, []string{"run", "--addrs", "localhost", "b6", "--", "touch", "{{M}}"}, "b6", `"localhost"`},
		{"same address twice", nil, []string{"run", "--addrs", a + "," + c.Addrs()[0], "b7", "--", "touch", "{{M}}"}, "b7", "given twice"},
		{"bad ttl", nil, []string{"run", "--addrs", a, "--ttl", "ten", "b8", "--", "touch", "{{M}}"}, "b8", `"ten"`},
		{"bad wait", nil, []string{"run", "--addrs", a, "--wait", "5x", "b9", "--", "touch", "{{M}}"}, "b9", `"5x"`},
		{"bad grace", nil, []string{"run", "--addrs", a, "--grace", "soon", "b10", "--", "touch", "{{M}}"}, "b10", `"soon"`},
		{"bad node timeout", nil, []string{"run", "--addrs", a, "--node-timeout", "1", "b11", "--", "touch", "{{M}}"}, "b11", `"1"`},
		{"negative wait", nil, []string{"run", "--addrs", a, "--wait", "-1s", "b12", "--", "touch", "{{M}}"}, "b12", "--wait -1s"},
		{"negative grace", nil, []string{"run", "--addrs", a, "--grace", "-1s", "b13", "--", "touch", "{{M}}"}, "b13", "--grace -1s"},
		{"ttl below node timeout", nil, []string{"run", "--addrs", a, "--ttl", "1ms", "b14", "--", "touch", "{{M}}"}, "b14", "TTL 1ms"},
		{"ttl not whole ms", nil, []string{"run", "--addrs", a, "--ttl", "1500us", "b15", "--", "touch", "{{M}}"}, "b15", "TTL 1.5ms"},
		{"zero node timeout", nil, []string{"run", "--addrs", a, "--node-timeout", "0", "b16", "--", "touch", "{{M}}"}, "b16", "--node-timeout 0s"},
		{"node timeout not below ttl", nil, []string{"run", "--addrs", a, "--node-timeout", "10s", "b17", "--", "touch", "{{M}}"}, "b17", "node timeout 10s"},
		{"empty name", nil, []string{"run", "--addrs", a, "", "--", "touch", "{{M}}"}, "", "empty lock NAME"},
		{"long name", nil, []string{"run", "--addrs", a, strings.Repeat("n", 1025), "--", "touch", "{{M}}"}, strings.Repeat("n", 1025), "longer than 1024"},
		{"no name", nil, []string{"run", "--addrs", a, "--", "touch", "{{M}}"}, "", "missing lock NAME"},
		{"missing command", nil, []string{"run", "--addrs", a, "b18", "--"}, "b18", "missing command after --"},
		{"missing --", nil, []string{"run", "--addrs", a, "b19", "touch", "{{M}}"}, "b19", "missing --"},
		{"extra argument", nil, []string{"run", "--addrs", a, "b20", "x", "--", "touch", "{{M}}"}, "b20", `unexpected argument "x"`},
		{"unknown command", nil, []string{"frobnicate", "--addrs", a}, "", `unknown command "frobnicate"`},
		{"no command", nil, nil, "", "missing command"},
		{"status unknown flag", nil, []string{"status", "--addrs", a, "--yaml", "b21"}, "", "-yaml"},
		{"status no name", nil, []string{"status", "--addrs", a}, "", "missing lock NAME"},
		{"status two names", nil, []string{"status", "--addrs", a, "x", "y"}, "", "unexpected arguments"},
		{"status no addresses", nil, []string{"status", "x"}, "", "REDLOCK_ADDRS"},
		{"status bad node timeout", nil, []string{"status", "--addrs", a, "--node-timeout", "-1s", "x"}, "", "--node-timeout -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			args := make([]string, len(tc.args))
			for i, s := range tc.args {
				args[i] = strings.ReplaceAll(s, "{{M}}", marker)
			}
			r := runBin(t, tc.env, args...)
			if r.code != exitUsage || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d", r.code, r.stdout, r.stderr, exitUsage)
			}
			oneLineOf(t, "stderr", r.stderr)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q; want it to name %q", r.stderr, tc.want)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Errorf("the command ran: %v", err)
			}
			if k := keyCount(t, c, tc.lock); k != 0 {
				t.Errorf("lock key of %q on %d nodes; want none", tc.lock, k)
			}
		})
	}
}

// A command that cannot be found exits 127, as in a shell, before any lock
// is taken.
func TestRunCommandNotFound(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 3)
	for _, cmd := range []string{"redlock-no-such-command", "./no/such/file"} {
		r := runBin(t, nil, "run", "--addrs", addrs(c), "nf", "--", cmd)
		if r.code != exitNotFound || !strings.Contains(r.stderr, cmd) {
			t.Errorf("%s: exit %d, stderr %q; want %d naming it", cmd, r.code, r.stderr, exitNotFound)
		}
		oneLineOf(t, "stderr", r.stderr)
		if k := keyCount(t, c, "nf"); k != 0 {
			t.Errorf("lock key on %d nodes; want none", k)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"run", "-h"}, {"status", "--help"}} {
		r := runBin(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "EXIT CODES") || !strings.Contains(r.stdout, "redlock run [flags] NAME -- COMMAND") || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want the usage and 0", args, r.code, r.stdout, r.stderr)
		}
	}
}
