package main

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/quorumlock/quorumlock/pool"
)

// The nodes of run and status: --addrs or REDLOCK_ADDRS, HOST:PORT and
// redis:// or rediss:// URLs mixed, with the password and TLS flags.

// node is one entry of --addrs or REDLOCK_ADDRS.
type node struct {
	raw   string    // as given: it may hold a password, so it is never shown
	shown string    // as messages show it: raw with any password hidden
	url   *pool.URL // nil for HOST:PORT
	addr  string    // HOST:PORT: the node, whatever the form (N1)
}

// nodeList splits the addresses, HOST:PORT and redis:// or rediss:// URLs
// mixed, and rejects what cannot be N independent nodes: no address, an
// empty entry, a bad URL (naming its bad part), no port, the same node
// twice (N1), whatever the form names it in. The messages name where the
// addresses came from (--addrs or REDLOCK_ADDRS) and never show a password.
func (c *connFlags) nodeList() ([]node, error) {
	if strings.TrimSpace(c.addrs) == "" {
		return nil, fmt.Errorf("no Redis addresses: set --addrs or %s", envAddrs)
	}
	from := cmp.Or(c.addrsFrom, "--addrs")
	entries := strings.Split(c.addrs, ",")
	shown := make([]string, len(entries))
	for i, a := range entries {
		shown[i] = shownAddr(strings.TrimSpace(a))
	}
	var list []node
	for i, a := range entries {
		a = strings.TrimSpace(a)
		n := node{raw: a, shown: shown[i]}
		switch {
		case a == "":
			return nil, fmt.Errorf("empty address at position %d in %s %q", i+1, from, strings.Join(shown, ","))
		case strings.Contains(a, "://"):
			u, err := pool.ParseURL(a)
			if err != nil {
				return nil, fmt.Errorf("bad address in %s: %s", from, strings.TrimPrefix(err.Error(), "pool: "))
			}
			n.url, n.addr = u, u.Addr
		case strings.Contains(a, "@"):
			return nil, fmt.Errorf("bad address %q in %s: HOST:PORT holds no user or password; use redis://USER@HOST:PORT with %s or --password-file",
				n.shown, from, envPassword)
		default:
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				return nil, fmt.Errorf("bad address %q in %s: want HOST:PORT or a redis:// or rediss:// URL", n.shown, from)
			}
			n.addr = a
		}
		if j := slices.IndexFunc(list, func(m node) bool { return m.addr == n.addr }); j >= 0 {
			if list[j].shown == n.shown {
				return nil, fmt.Errorf("address %q given twice in %s: the nodes must be independent", n.shown, from)
			}
			return nil, fmt.Errorf("node %s given twice in %s, as %q and %q: the nodes must be independent", n.addr, from, list[j].shown, n.shown)
		}
		list = append(list, n)
	}
	return list, nil
}

// shownAddr is an entry of the addresses as messages show it: a URL
// without its password; HOST:PORT holding an "@" (not a URL, so not
// redacted as one: a user part typed there, or the tail of a URL's
// password cut at an unescaped ",") with all of it up to the last "@"
// hidden.
func shownAddr(a string) string {
	if at := strings.LastIndex(a, "@"); at >= 0 && !strings.Contains(a, "://") {
		return "xxxxx" + a[at:]
	}
	return pool.RedactURL(a)
}

// addrList returns the HOST:PORT of each node of nodeList, for the demo,
// which reaches the nodes through its own plain TCP proxies with no
// password: a URL asking for TLS, a user or a database is refused by name
// rather than failing later with an obscure connection error.
func (c *connFlags) addrList() ([]string, error) {
	nodes, err := c.nodeList()
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		if u := n.url; u != nil && (u.TLS || u.Username != "" || u.DB > 0 || n.shown != n.raw) {
			return nil, fmt.Errorf("address %q in %s: the demo reaches nodes in plain TCP with no user, password or database; give it nodes it can reach that way, or none (--nodes starts local ones)",
				n.shown, cmp.Or(c.addrsFrom, "--addrs"))
		}
		addrs[i] = n.addr
	}
	return addrs, nil
}

// openPools opens one pool per node, after checking the flags together,
// and warns on stderr about an even number of nodes and about a password
// that ps shows. Its error is a usage error.
func (c *connFlags) openPools() ([]pool.Pool, error) {
	nodes, err := c.nodeList()
	if err != nil {
		return nil, err
	}
	if c.nodeTimeout <= 0 {
		return nil, fmt.Errorf("--node-timeout %v: must be > 0", c.nodeTimeout)
	}
	if err := c.checkTLS(nodes); err != nil {
		return nil, err
	}
	// The password: a node's URL's, else --password-file's, else
	// --password's, else $REDLOCK_PASSWORD's.
	var password []pool.Option
	switch {
	case c.passwordFile != "" && c.passwordFlag:
		return nil, errors.New("--password and --password-file: give one")
	case c.passwordFile != "":
		password = []pool.Option{pool.WithPasswordFile(c.passwordFile)}
	case c.password != "":
		password = []pool.Option{pool.WithPassword(c.password)}
	}
	for _, n := range nodes {
		user, hasPassword := c.user, password != nil
		if n.url != nil {
			user, hasPassword = cmp.Or(n.url.Username, c.user), hasPassword || n.url.HasPassword()
		}
		if user != "" && !hasPassword {
			return nil, fmt.Errorf("user %q for %s: no password: set %s or --password-file", user, n.shown, envPassword)
		}
	}
	warnEven(len(nodes))
	c.warnVisiblePasswords(nodes)

	base := append([]pool.Option{pool.WithDialTimeout(dialTimeout)}, password...)
	if c.user != "" {
		base = append(base, pool.WithUsername(c.user))
	}
	pools := make([]pool.Pool, 0, len(nodes))
	for _, n := range nodes {
		opts := base
		if (n.url != nil && n.url.TLS) || (n.url == nil && c.tls) {
			opts = append(opts[:len(opts):len(opts)], c.tlsOptions()...)
		}
		var p pool.Pool
		if n.url != nil {
			p, err = pool.FromURL(n.raw, opts...)
		} else if p = pool.New(n.addr, opts...); pool.Validate(p) != nil {
			p, err = nil, pool.Validate(p)
		}
		if err != nil {
			closePools(pools)
			return nil, errors.New(strings.TrimPrefix(err.Error(), "pool: "))
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// checkTLS rejects TLS flags that would not be used or that contradict the
// addresses.
func (c *connFlags) checkTLS(nodes []node) error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("--tls-cert %q and --tls-key %q: give both, the client certificate and its key", c.tlsCert, c.tlsKey)
	}
	anyTLS := c.tls
	for _, n := range nodes {
		switch {
		case n.url == nil:
		case n.url.TLS:
			anyTLS = true
		case c.tls:
			return fmt.Errorf("--tls with %s: a redis:// URL is plain TCP; use rediss://", n.shown)
		}
	}
	if !anyTLS {
		for _, f := range []struct{ name, v string }{{"--tls-ca", c.tlsCA}, {"--tls-cert", c.tlsCert}, {"--tls-server-name", c.tlsServer}} {
			if f.v != "" {
				return fmt.Errorf("%s without TLS: add --tls, or use rediss:// addresses", f.name)
			}
		}
	}
	return nil
}

// tlsOptions returns the pool options of a node reached with TLS.
func (c *connFlags) tlsOptions() []pool.Option {
	// An empty config verifies the node's certificate against the system
	// roots ($SSL_CERT_FILE, $SSL_CERT_DIR) and the host name of its
	// address, and presents no client certificate; the flags change that.
	opts := []pool.Option{pool.WithTLS(&tls.Config{})}
	if c.tlsCA != "" {
		opts = append(opts, pool.WithTLSCAFile(c.tlsCA))
	}
	if c.tlsCert != "" {
		opts = append(opts, pool.WithTLSClientCert(c.tlsCert, c.tlsKey))
	}
	if c.tlsServer != "" {
		opts = append(opts, pool.WithTLSServerName(c.tlsServer))
	}
	return opts
}

// warnVisiblePasswords warns, once, that a password given on the command
// line is visible to every user of the machine (ps), without showing it.
func (c *connFlags) warnVisiblePasswords(nodes []node) {
	where := ""
	if c.passwordFlag {
		where = "--password"
	}
	if c.addrsFrom == "--addrs" {
		for _, n := range nodes {
			if n.url != nil && n.url.HasPassword() {
				where = fmt.Sprintf("--addrs (%s)", n.shown)
				break
			}
		}
	}
	if where != "" {
		errorf("warning: the password in %s is visible to other users in ps; use %s or --password-file", where, envPassword)
	}
}
