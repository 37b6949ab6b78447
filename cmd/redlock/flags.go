package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Environment variables read for flag defaults. The password comes from the
// environment (or --password-file) so that it need not appear in `ps`
// output.
const (
	envAddrs    = "REDLOCK_ADDRS"
	envPassword = "REDLOCK_PASSWORD"
)

// connFlags are the flags shared by the commands that talk to Redis.
type connFlags struct {
	addrs        string
	addrsFrom    string // where addrs came from, for messages: "--addrs" or "REDLOCK_ADDRS"
	user         string
	password     string
	passwordFlag bool // --password was on the command line, where ps shows it
	passwordFile string
	tls          bool
	tlsCA        string
	tlsCert      string
	tlsKey       string
	tlsServer    string
	nodeTimeout  time.Duration
	ttl          time.Duration // registered by run only: status takes no lock
}

// newFlagSet returns a flag set that prints nothing: the caller turns a parse
// error into one usage line (exit 2).
func newFlagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet("redlock "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// register adds the connection flags to fs. The defaults taken from the
// environment are applied after parsing (resolveEnv), so that the usage text
// never shows the password.
func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addrs, "addrs", "", "")
	fs.StringVar(&c.user, "user", "", "")
	fs.StringVar(&c.password, "password", "", "")
	fs.StringVar(&c.passwordFile, "password-file", "", "")
	fs.BoolVar(&c.tls, "tls", false, "")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "")
	fs.StringVar(&c.tlsKey, "tls-key", "", "")
	fs.StringVar(&c.tlsServer, "tls-server-name", "", "")
	fs.DurationVar(&c.nodeTimeout, "node-timeout", redlock.DefaultNodeTimeout, "")
}

// registerTTL adds --ttl to fs.
func (c *connFlags) registerTTL(fs *flag.FlagSet) {
	fs.DurationVar(&c.ttl, "ttl", redlock.DefaultTTL, "")
}

// resolveEnv fills the flags not given on the command line from the
// environment.
func (c *connFlags) resolveEnv(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.addrsFrom = "--addrs"
	if !set["addrs"] {
		c.addrs, c.addrsFrom = os.Getenv(envAddrs), envAddrs
	}
	c.passwordFlag = set["password"]
	if !set["password"] {
		c.password = os.Getenv(envPassword)
	}
}

// evenWarning returns the warning for n nodes, or "" when n is odd. An even
// N is safe (Q = N/2+1 still makes two quorums overlap) but tolerates
// N-Q = N/2-1 failures, as N-1 nodes do: the extra node only adds a
// machine that can fail.
func evenWarning(n int) string {
	if n%2 != 0 {
		return ""
	}
	f := n/2 - 1
	failures := "failures"
	if f == 1 {
		failures = "failure"
	}
	do := "do"
	if n-1 == 1 {
		do = "does"
	}
	return fmt.Sprintf("%d nodes tolerate %d %s, as %d %s; use an odd number", n, f, failures, n-1, do)
}

// warnEven prints evenWarning's line on stderr for an even n.
func warnEven(n int) {
	if w := evenWarning(n); w != "" {
		errorf("warning: %s", w)
	}
}

// closePools closes every pool.
func closePools(pools []pool.Pool) {
	for _, p := range pools {
		p.Close()
	}
}

// parseArgs parses flags placed anywhere before "--" and returns the
// positional arguments, the words after "--" and whether "--" was there.
// Everything after "--" belongs to the command, its flags included. Its
// error is flag.ErrHelp, or one that spells the flag as the help does.
func parseArgs(fs *flag.FlagSet, args []string) (pos, command []string, dashdash bool, err error) {
	if i := slices.Index(args, "--"); i >= 0 {
		args, command, dashdash = args[:i], args[i+1:], true
	}
	for {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				err = errors.New(flagMessage(fs, err))
			}
			return nil, nil, false, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, command, dashdash, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// parseCommand is parseArgs for the command line of command cmd, whose
// flags are fs, with the handling every command gives it: --help prints the
// command's help, a bad flag one usage line. Then it returns ok false with
// the exit code (exitOK after --help).
func parseCommand(cmd string, fs *flag.FlagSet, args []string) (pos, command []string, dashdash bool, code int, ok bool) {
	pos, command, dashdash, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(cmd)
		return nil, nil, false, exitOK, false
	}
	if err != nil {
		return nil, nil, false, usageErr(cmd, "%v", err), false
	}
	return pos, command, dashdash, exitOK, true
}

// checkName rejects a lock name the library would refuse, before anything
// is started.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty lock NAME")
	case len(name) > redlock.MaxNameLen:
		return fmt.Errorf("lock NAME of %d bytes (%.20q...): longer than %d", len(name), name, redlock.MaxNameLen)
	}
	return nil
}

// The errors of the flag package (Go 1.26's texts), which spell a flag with
// one dash ("-ttl") where the help spells it with two.
var (
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -(.+)$`)
	flagBadValue  = regexp.MustCompile(`^invalid value (".*") for flag -([^ :]+): (.*)$`)
	flagBadBool   = regexp.MustCompile(`^invalid boolean value (".*") for -([^ :]+): (.*)$`)
	flagSyntax    = regexp.MustCompile(`^bad flag syntax: (.*)$`)
)

// flagMessage rewrites a parse error of fs in the help's words: "--ttl",
// the bad value and what is wanted instead. A malformed argument is shown
// only up to its "=": what follows may be a password.
func flagMessage(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return "missing value for --" + m[1]
	}
	if m := flagBadBool.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s %s: want true or false", m[2], m[1])
	}
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s %s: %s", m[2], m[1], wantValue(fs.Lookup(m[2]), m[3]))
	}
	if m := flagSyntax.FindStringSubmatch(msg); m != nil {
		arg, _, cut := strings.Cut(m[1], "=")
		if cut {
			arg += "=..."
		}
		return fmt.Sprintf("bad flag syntax %q", arg)
	}
	return msg
}

// wantValue says what flag f takes, after a value it refused with reason.
func wantValue(f *flag.Flag, reason string) string {
	if strings.Contains(reason, "out of range") {
		return "out of range"
	}
	var v any
	if f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			v = g.Get()
		}
	}
	switch v.(type) {
	case time.Duration:
		return "want a duration such as 300ms, 10s or 2m"
	case int:
		return "want a whole number"
	case uint64:
		return "want a whole number >= 0"
	}
	return reason
}
