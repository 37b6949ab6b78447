package main

import (
	"debug/buildinfo"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
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
		{"unknown flag", nil, []string{"run", "--addrs", a, "--bogus", "b1", "--", "touch", "{{M}}"}, "b1", "unknown flag --bogus"},
		{"unknown flag, one dash", nil, []string{"run", "--addrs", a, "-bogus", "b1", "--", "touch", "{{M}}"}, "b1", "unknown flag --bogus"},
		{"flag without value", nil, []string{"run", "--addrs", a, "b1", "--ttl", "--", "touch", "{{M}}"}, "b1", "missing value for --ttl"},
		{"bad boolean", nil, []string{"run", "--addrs", a, "--fencing=maybe", "b1", "--", "touch", "{{M}}"}, "b1", `--fencing "maybe": want true or false`},
		{"bad flag syntax", nil, []string{"run", "--addrs", a, "---password=s3cret", "b1", "--", "touch", "{{M}}"}, "b1", `bad flag syntax "---password=..."`},
		{"no addresses", nil, []string{"run", "b2", "--", "touch", "{{M}}"}, "b2", "REDLOCK_ADDRS"},
		{"empty --addrs", []string{"REDLOCK_ADDRS=" + a}, []string{"run", "--addrs", "", "b3", "--", "touch", "{{M}}"}, "b3", "no Redis addresses"},
		{"empty address", nil, []string{"run", "--addrs", c.Addrs()[0] + ",," + c.Addrs()[1], "b4", "--", "touch", "{{M}}"}, "b4", "empty address at position 2 in --addrs"},
		{"trailing comma", []string{"REDLOCK_ADDRS=" + a + ","}, []string{"run", "b5", "--", "touch", "{{M}}"}, "b5", "empty address at position 6 in REDLOCK_ADDRS"},
		{"address without port", nil, []string{"run", "--addrs", "localhost", "b6", "--", "touch", "{{M}}"}, "b6", `"localhost"`},
		{"same address twice", nil, []string{"run", "--addrs", a + "," + c.Addrs()[0], "b7", "--", "touch", "{{M}}"}, "b7", "given twice"},
		{"bad ttl", nil, []string{"run", "--addrs", a, "--ttl", "ten", "b8", "--", "touch", "{{M}}"}, "b8", `--ttl "ten": want a duration such as 300ms, 10s or 2m`},
		{"bad wait", nil, []string{"run", "--addrs", a, "--wait", "5x", "b9", "--", "touch", "{{M}}"}, "b9", `--wait "5x": want a duration`},
		{"bad grace", nil, []string{"run", "--addrs", a, "--grace", "soon", "b10", "--", "touch", "{{M}}"}, "b10", `--grace "soon": want a duration`},
		{"bad node timeout", nil, []string{"run", "--addrs", a, "--node-timeout", "1", "b11", "--", "touch", "{{M}}"}, "b11", `--node-timeout "1": want a duration`},
		{"negative wait", nil, []string{"run", "--addrs", a, "--wait", "-1s", "b12", "--", "touch", "{{M}}"}, "b12", "--wait -1s"},
		{"negative grace", nil, []string{"run", "--addrs", a, "--grace", "-1s", "b13", "--", "touch", "{{M}}"}, "b13", "--grace -1s"},
		{"ttl below node timeout", nil, []string{"run", "--addrs", a, "--ttl", "1ms", "b14", "--", "touch", "{{M}}"}, "b14", "--ttl 1ms with --node-timeout 50ms: invalid option:"},
		{"ttl not whole ms", nil, []string{"run", "--addrs", a, "--ttl", "1500us", "b15", "--", "touch", "{{M}}"}, "b15", "--ttl 1.5ms with --node-timeout 50ms: invalid option: TTL 1.5ms"},
		{"zero node timeout", nil, []string{"run", "--addrs", a, "--node-timeout", "0", "b16", "--", "touch", "{{M}}"}, "b16", "--node-timeout 0s"},
		{"node timeout not below ttl", nil, []string{"run", "--addrs", a, "--node-timeout", "10s", "b17", "--", "touch", "{{M}}"}, "b17", "--ttl 10s with --node-timeout 10s: invalid option: node timeout 10s"},
		{"empty name", nil, []string{"run", "--addrs", a, "", "--", "touch", "{{M}}"}, "", "empty lock NAME"},
		{"long name", nil, []string{"run", "--addrs", a, strings.Repeat("n", 1025), "--", "touch", "{{M}}"}, strings.Repeat("n", 1025), "longer than 1024"},
		{"no name", nil, []string{"run", "--addrs", a, "--", "touch", "{{M}}"}, "", "missing lock NAME"},
		{"missing command", nil, []string{"run", "--addrs", a, "b18", "--"}, "b18", "missing command after --"},
		{"missing --", nil, []string{"run", "--addrs", a, "b19", "touch", "{{M}}"}, "b19", "missing --"},
		{"extra argument", nil, []string{"run", "--addrs", a, "b20", "x", "--", "touch", "{{M}}"}, "b20", `unexpected argument "x"`},
		{"unknown command", nil, []string{"frobnicate", "--addrs", a}, "", `unknown command "frobnicate"`},
		{"no command", nil, nil, "", "missing command"},
		{"status unknown flag", nil, []string{"status", "--addrs", a, "--yaml", "b21"}, "", "unknown flag --yaml"},
		{"status bad boolean", nil, []string{"status", "--addrs", a, "--json=yes please", "b21"}, "", `--json "yes please": want true or false`},
		{"status no name", nil, []string{"status", "--addrs", a}, "", "missing lock NAME"},
		{"status two names", nil, []string{"status", "--addrs", a, "x", "y"}, "", "unexpected arguments"},
		{"status no addresses", nil, []string{"status", "x"}, "", "REDLOCK_ADDRS"},
		{"status bad node timeout", nil, []string{"status", "--addrs", a, "--node-timeout", "-1s", "x"}, "", "--node-timeout -1s"},
		{"bad holder", nil, []string{"run", "--addrs", a, "--holder", "tab\there", "b22", "--", "touch", "{{M}}"}, "b22", `invalid option: holder label "tab\there": holds a control character`},
		{"long holder", nil, []string{"run", "--addrs", a, "--holder", strings.Repeat("h", 129), "b23", "--", "touch", "{{M}}"}, "b23", "holder label of 129 bytes"},
		{"check with a name", nil, []string{"check", "--addrs", a, "x"}, "", `unexpected argument "x"`},
		{"check no addresses", nil, []string{"check"}, "", "REDLOCK_ADDRS"},
		{"unlock without --force", nil, []string{"unlock", "--addrs", a, "--yes", "b24"}, "b24", "needs --force"},
		{"unlock no name", nil, []string{"unlock", "--addrs", a, "--force"}, "", "missing lock NAME"},
		{"unlock two names", nil, []string{"unlock", "--addrs", a, "--force", "x", "y"}, "", "unexpected arguments"},
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
			checkFlagSpelling(t, r.stderr)
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("stderr %q shows the password", r.stderr)
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

// singleDashFlag finds a flag spelled with one dash ("-ttl"), as Go's flag
// package spells them; the help spells them "--ttl".
var singleDashFlag = regexp.MustCompile(`(^|[\s:(])-[a-zA-Z]`)

// checkFlagSpelling fails the test if msg spells a flag with one dash.
func checkFlagSpelling(t *testing.T, msg string) {
	t.Helper()
	if m := singleDashFlag.FindString(msg); m != "" {
		t.Errorf("%q spells a flag %q; want --NAME, as the help does", msg, strings.TrimSpace(m))
	}
}

// The flags of each command, from the flag sets the commands parse with.
func commandFlags() map[string]*flag.FlagSet {
	return map[string]*flag.FlagSet{
		"run":    runFlagSet(&runOpts{}),
		"status": statusFlagSet(&statusOpts{}),
		"check":  checkFlagSet(&checkOpts{}),
		"unlock": unlockFlagSet(&unlockOpts{}),
		"leader": leaderFlagSet(&leaderOpts{}),
		"demo":   demoFlagSet(&demoOpts{}),
	}
}

var usageLines = map[string]string{
	"run":    "redlock run [flags] NAME -- COMMAND [ARGS...]",
	"status": "redlock status [flags] NAME",
	"check":  "redlock check [flags]",
	"unlock": "redlock unlock --force [--yes] [flags] NAME",
	"leader": "redlock leader [flags] NAME",
	"demo":   "redlock demo [flags]",
}

// mentions reports whether help names flag --name (not a longer flag).
func mentions(help, name string) bool {
	return regexp.MustCompile(`--` + regexp.QuoteMeta(name) + `([^a-zA-Z0-9-]|$)`).MatchString(help)
}

// `redlock help` (and --help, -h) prints the whole help: every command,
// every flag, the version command and the exit codes. `redlock CMD --help`
// (and -h, and `redlock help CMD`) prints that command's usage and flags,
// and none of another command's; both exit 0 with nothing on stderr.
func TestHelp(t *testing.T) {
	t.Parallel()
	sets := commandFlags()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}} {
		r := runBin(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
		}
		for _, want := range []string{"EXIT CODES", "redlock help [COMMAND]", "redlock version", "--version"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: the help lacks %q:\n%s", args, want, r.stdout)
			}
		}
		for cmd, fs := range sets {
			if !strings.Contains(r.stdout, usageLines[cmd]) {
				t.Errorf("%v: the help lacks %q", args, usageLines[cmd])
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !mentions(r.stdout, f.Name) {
					t.Errorf("%v: the help lacks %s's flag --%s", args, cmd, f.Name)
				}
			})
		}
	}
	for cmd, fs := range sets {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {cmd, "-help"}, {"help", cmd}, {cmd, "--addrs", "127.0.0.1:1", "--help"}} {
			r := runBin(t, nil, args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v: exit %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
			}
			for _, want := range []string{usageLines[cmd], "--help", "EXIT CODES"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%v: %s's help lacks %q:\n%s", args, cmd, want, r.stdout)
				}
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !mentions(r.stdout, f.Name) {
					t.Errorf("%v: %s's help lacks its flag --%s:\n%s", args, cmd, f.Name, r.stdout)
				}
			})
			for other, ofs := range sets {
				if other == cmd {
					continue
				}
				if strings.Contains(r.stdout, usageLines[other]) {
					t.Errorf("%v: %s's help shows %q", args, cmd, usageLines[other])
				}
				ofs.VisitAll(func(f *flag.Flag) {
					if fs.Lookup(f.Name) == nil && mentions(r.stdout, f.Name) {
						t.Errorf("%v: %s's help names %s's flag --%s", args, cmd, other, f.Name)
					}
				})
			}
		}
	}
	// help for a command that does not exist is a usage error.
	r := runBin(t, nil, "help", "frobnicate")
	if r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stderr %q; want %d naming it", r.code, r.stderr, exitUsage)
	}
}

// `redlock --version` and `redlock version` print one line: the module
// version the binary was built with and, from a checkout, its commit.
func TestVersion(t *testing.T) {
	t.Parallel()
	bi, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatalf("build info of %s: %v", binPath, err)
	}
	want := []string{"redlock " + bi.Main.Version}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			want = append(want, "commit "+s.Value[:min(12, len(s.Value))])
		case s.Key == "vcs.modified" && s.Value == "true":
			want = append(want, "modified")
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		r := runBin(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
		}
		oneLineOf(t, "stdout", r.stdout)
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%v: %q; want it to say %q", args, r.stdout, w)
			}
		}
	}
	if r := runBin(t, nil, "version", "extra"); r.code != exitUsage {
		t.Errorf("version extra: exit %d, stderr %q; want %d", r.code, r.stderr, exitUsage)
	}
}

func TestVersionLine(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "91e1a6a0bd12c3f4e5d6a7b8c9d0e1f2a3b4c5d6"
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "redlock (version unknown)"},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "redlock v1.2.3 (go1.26.0)"},
		{"checkout, clean", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")},
			"redlock (devel), commit 91e1a6a0bd12 (go1.26.0)"},
		{"checkout, modified", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20251201195300-91e1a6a0bd12+dirty"}, Settings: vcs(rev, "true")},
			"redlock v0.0.0-20251201195300-91e1a6a0bd12+dirty, commit 91e1a6a0bd12, modified (go1.26.0)"},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "redlock (devel) (go1.26.0)"},
		{"no version", &debug.BuildInfo{}, "redlock (devel)"},
	} {
		if got := versionLine(tc.bi); got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

// An even number of nodes works (Q = N/2+1) but tolerates no more failures
// than one node fewer: run, status and demo say so in one line and go on.
func TestEvenNodesWarning(t *testing.T) {
	t.Parallel()
	c := redistest.New(t, 4)
	const four = "redlock: warning: 4 nodes tolerate 1 failure, as 3 do; use an odd number\n"
	r := runBin(t, nil, "run", "--addrs", addrs(c), "--node-timeout", testNodeTimeout, "even", "--", "true")
	if r.code != 0 || r.stderr != four {
		t.Errorf("run on 4 nodes: exit %d, stderr %q; want 0 and %q", r.code, r.stderr, four)
	}
	two := strings.Join(c.Addrs()[:2], ",")
	const twoWarn = "redlock: warning: 2 nodes tolerate 0 failures, as 1 does; use an odd number\n"
	r = runBin(t, nil, "status", "--addrs", two, "even")
	if r.code != 0 || r.stderr != twoWarn || !strings.Contains(r.stdout, "free (2 of 2 nodes answered, quorum 2)") {
		t.Errorf("status on 2 nodes: exit %d, stdout %q, stderr %q; want 0, the verdict and %q", r.code, r.stdout, r.stderr, twoWarn)
	}
	three := strings.Join(c.Addrs()[:3], ",")
	if r = runBin(t, nil, "status", "--addrs", three, "even"); r.code != 0 || r.stderr != "" {
		t.Errorf("status on 3 nodes: exit %d, stderr %q; want 0 and no warning", r.code, r.stderr)
	}
	// demo: see TestDemoYourNodes (4 nodes from $REDLOCK_ADDRS).
}

func TestEvenWarningText(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{
		1: "", 3: "", 5: "",
		2: "2 nodes tolerate 0 failures, as 1 does; use an odd number",
		4: "4 nodes tolerate 1 failure, as 3 do; use an odd number",
		6: "6 nodes tolerate 2 failures, as 5 do; use an odd number",
	} {
		if got := evenWarning(n); got != want {
			t.Errorf("evenWarning(%d) = %q; want %q", n, got, want)
		}
	}
}
