package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// Environment variables read for flag defaults. The password comes from the
// environment so that it need not appear in `ps` output.
const (
	envAddrs    = "REDLOCK_ADDRS"
	envPassword = "REDLOCK_PASSWORD"
)

// connFlags are the flags shared by the commands that talk to Redis.
type connFlags struct {
	addrs       string
	password    string
	tls         bool
	nodeTimeout time.Duration
	ttl         time.Duration // registered by run only: status takes no lock
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
	fs.StringVar(&c.password, "password", "", "")
	fs.BoolVar(&c.tls, "tls", false, "")
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
	if !set["addrs"] {
		c.addrs = os.Getenv(envAddrs)
	}
	if !set["password"] {
		c.password = os.Getenv(envPassword)
	}
}

// addrList splits --addrs and rejects what cannot be N independent nodes:
// no address, an empty entry, no port, the same node twice (N1).
func (c *connFlags) addrList() ([]string, error) {
	if strings.TrimSpace(c.addrs) == "" {
		return nil, fmt.Errorf("no Redis addresses: set --addrs or %s", envAddrs)
	}
	var list []string
	for i, a := range strings.Split(c.addrs, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("empty address at position %d in --addrs %q", i+1, c.addrs)
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return nil, fmt.Errorf("bad address %q in --addrs: want HOST:PORT", a)
		}
		if slices.Contains(list, a) {
			return nil, fmt.Errorf("address %q given twice in --addrs: the nodes must be independent", a)
		}
		list = append(list, a)
	}
	return list, nil
}

// openPools opens one pool per address. Its error is a usage error.
func (c *connFlags) openPools() ([]pool.Pool, error) {
	addrs, err := c.addrList()
	if err != nil {
		return nil, err
	}
	if c.nodeTimeout <= 0 {
		return nil, fmt.Errorf("--node-timeout %v: must be > 0", c.nodeTimeout)
	}
	var opts []pool.Option
	if c.password != "" {
		opts = append(opts, pool.WithPassword(c.password))
	}
	if c.tls {
		opts = append(opts, pool.WithTLS(&tls.Config{}))
	}
	pools := make([]pool.Pool, len(addrs))
	for i, a := range addrs {
		pools[i] = pool.New(a, opts...)
		if err := pool.Validate(pools[i]); err != nil {
			closePools(pools[:i+1])
			return nil, err
		}
	}
	return pools, nil
}

// closePools closes every pool.
func closePools(pools []pool.Pool) {
	for _, p := range pools {
		p.Close()
	}
}

// parseArgs parses flags placed anywhere before "--" and returns the
// positional arguments, the words after "--" and whether "--" was there.
// Everything after "--" belongs to the command, its flags included.
func parseArgs(fs *flag.FlagSet, args []string) (pos, command []string, dashdash bool, err error) {
	if i := slices.Index(args, "--"); i >= 0 {
		args, command, dashdash = args[:i], args[i+1:], true
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, false, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, command, dashdash, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
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
