package pool

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the port of a URL that names none.
const DefaultPort = 6379

// URL is what a redis:// or rediss:// URL says about one node:
//
//	redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?PARAM=VALUE&...]
//	rediss://...   the same, over TLS
//
// USER and PASSWORD are percent-decoded; HOST may be an IPv6 address in
// brackets; PORT defaults to 6379; DB is a number >= 0. The parameters are
// dial_timeout, read_timeout and write_timeout, Go durations such as 500ms.
// Anything else is refused by name. String shows the URL with the password
// replaced by "xxxxx", so a URL can be printed or logged as it is.
type URL struct {
	// TLS is true for rediss://.
	TLS bool
	// Addr is "host:port", the name errors give the node.
	Addr string
	// Username is the ACL user, "" for none (the "default" user).
	Username string
	// DB is the database the URL selects, or -1 when it names none.
	DB int

	password    string
	hasPassword bool
	timeouts    map[string]time.Duration // by query parameter
	redacted    string
}

// HasPassword reports whether the URL holds a password.
func (u *URL) HasPassword() bool { return u.hasPassword }

// String returns the URL as given, with the password replaced by "xxxxx".
func (u *URL) String() string { return u.redacted }

// The query parameters a URL may hold, and the options they stand for.
var urlParams = map[string]func(time.Duration) Option{
	"dial_timeout":  WithDialTimeout,
	"read_timeout":  WithReadTimeout,
	"write_timeout": WithWriteTimeout,
}

// ParseURL parses a redis:// or rediss:// URL. Its error is a *URLError
// that names the part at fault (scheme, user, password, host, port, db, a
// query parameter, fragment) and shows the URL without its password.
func ParseURL(rawURL string) (*URL, error) {
	u := &URL{DB: -1, redacted: RedactURL(rawURL)}
	bad := func(part, format string, a ...any) error {
		return &URLError{URL: u.redacted, Part: part, Err: fmt.Errorf(format, a...)}
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, bad("scheme", "missing: want redis:// or rediss://")
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		u.TLS = true
	default:
		if strings.ContainsAny(scheme, ":@/") { // not a scheme: shown redacted in the URL only
			return nil, bad("scheme", "want redis:// or rediss://")
		}
		return nil, bad("scheme", "%q: want redis or rediss", scheme)
	}
	// The user information runs to the last "@": a password may hold any
	// character. What follows it cannot be part of the password, so it may
	// be quoted in messages.
	var userinfo string
	hasUserinfo := false
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, rest, hasUserinfo = rest[:at], rest[at+1:], true
	}
	var hostport, path, query, fragment string
	hasQuery, hasFragment := false, false
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, fragment, hasFragment = rest[:i], rest[i+1:], true
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query, hasQuery = rest[:i], rest[i+1:], true
	}
	hostport, path = rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, path = rest[:i], rest[i:]
	}

	if hasUserinfo {
		user, pw, hasPw := strings.Cut(userinfo, ":")
		var err error
		if u.Username, err = url.PathUnescape(user); err != nil {
			return nil, bad("user", "bad %%-escape")
		}
		if hasPw {
			if u.password, err = url.PathUnescape(pw); err != nil {
				return nil, bad("password", "bad %%-escape") // which one would show part of it
			}
			u.hasPassword = true
		}
	}

	host, port, err := splitHostPort(hostport, hasUserinfo)
	if err != nil {
		return nil, bad(err.part, "%s", err.msg)
	}
	u.Addr = net.JoinHostPort(host, strconv.Itoa(port))

	if path != "" && path != "/" {
		db, err := strconv.Atoi(path[1:])
		if err != nil || db < 0 || strings.ContainsAny(path[1:], "+-") {
			return nil, bad("db", "%q: want a number >= 0", path[1:])
		}
		u.DB = db
	}

	if hasQuery {
		values, err := url.ParseQuery(query)
		if err != nil {
			return nil, bad("query", "%v", err)
		}
		names := make([]string, 0, len(values))
		for name := range values {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			part := fmt.Sprintf("query parameter %q", name)
			if _, known := urlParams[name]; !known {
				return nil, bad(part, "unknown: want dial_timeout, read_timeout or write_timeout")
			}
			if len(values[name]) > 1 {
				return nil, bad(part, "given %d times", len(values[name]))
			}
			d, err := time.ParseDuration(values[name][0])
			if err != nil || d <= 0 {
				return nil, bad(part, "%q: want a duration > 0 such as 500ms or 2s", values[name][0])
			}
			if u.timeouts == nil {
				u.timeouts = map[string]time.Duration{}
			}
			u.timeouts[name] = d
		}
	}
	if hasFragment {
		return nil, bad("fragment", "%q: a URL of a node has none", fragment)
	}
	return u, nil
}

// hostPortError names the part of host:port at fault.
type hostPortError struct{ part, msg string }

// splitHostPort splits the host:port of a URL, with DefaultPort when it has
// none. afterAt says whether it followed a user part: a URL without one
// may be a password typed without its "@", so a port that is not a number
// is not quoted (RedactURL hides it as well).
func splitHostPort(hostport string, afterAt bool) (string, int, *hostPortError) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") { // [IPv6]:port
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, &hostPortError{"host", fmt.Sprintf("%q: no closing ] after an IPv6 address", hostport)}
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", 0, &hostPortError{"host", fmt.Sprintf("%q: want [IPv6]:PORT", hostport)}
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", 0, &hostPortError{"host", fmt.Sprintf("%q: not an IPv6 address", host)}
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(hostport, ":") {
			return "", 0, &hostPortError{"port", "empty after the colon"}
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		if strings.Count(hostport, ":") > 1 {
			if !afterAt && net.ParseIP(hostport) == nil {
				// Perhaps "USER:PASS:WORD" typed without its "@": not quoted.
				return "", 0, &hostPortError{"host", "more than one colon: an IPv6 address goes in brackets: [::1]:6379"}
			}
			return "", 0, &hostPortError{"host", fmt.Sprintf("%q: an IPv6 address goes in brackets: [::1]:6379", hostport)}
		}
		host, port = hostport[:i], hostport[i+1:]
		if port == "" {
			return "", 0, &hostPortError{"port", "empty after the colon"}
		}
	}
	switch {
	case host == "":
		return "", 0, &hostPortError{"host", "missing"}
	case strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '%' || r == '\\' || r == 0x7f }):
		return "", 0, &hostPortError{"host", fmt.Sprintf("%q: not a host name or address", host)}
	}
	if port == "" {
		return host, DefaultPort, nil
	}
	if strings.Trim(port, "0123456789") != "" {
		if !afterAt {
			return "", 0, &hostPortError{"port", "not a number"}
		}
		return "", 0, &hostPortError{"port", fmt.Sprintf("%q: not a number", port)}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, &hostPortError{"port", fmt.Sprintf("%s: want 1 to 65535", port)}
	}
	return host, n, nil
}

// RedactURL returns rawURL with its password replaced by "xxxxx", for
// messages and logs: everything between the first ":" of the user part and
// its last "@". It works on strings that do not parse, and on "host:port"
// strings holding a stray "user:password@": when unsure it hides more, never
// less. A URL without "@" whose port is not a number (or has no host
// before it, or that holds more colons than a port, not being an IPv6
// address), which may be a password typed without its "@", has everything
// from that colon on hidden: such a password may hold "/", "?" or "#".
func RedactURL(rawURL string) string {
	prefix, rest := "", rawURL
	if i := strings.Index(rawURL, "://"); i >= 0 {
		prefix, rest = rawURL[:i+3], rawURL[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
			return prefix + rest[:c+1] + "xxxxx" + rest[at:]
		}
		return rawURL
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	hostport := rest[:end]
	c := strings.LastIndexByte(hostport, ':')
	if c < 0 || c < strings.LastIndexByte(hostport, ']') {
		return rawURL
	}
	if !strings.HasPrefix(hostport, "[") && strings.Count(hostport, ":") > 1 {
		if net.ParseIP(hostport) != nil {
			return rawURL // a bare IPv6 address: its groups are hexadecimal
		}
		// Not an address: "USER:PASS:WORD" typed without its "@", the
		// password starting after the first colon.
		c = strings.IndexByte(hostport, ':')
	} else if port := hostport[c+1:]; c > 0 && strings.Trim(port, "0123456789") == "" {
		return rawURL // HOST:PORT
	}
	// A password typed without its "@" (a port that is not a number, or a
	// number with no host before it): it runs to the end of the string,
	// as it may hold "/", "?" or "#".
	return prefix + hostport[:c+1] + "xxxxx"
}

// FromURL returns a Pool of connections to the node rawURL names (see URL
// for its form). The URL wins over the options: a user, password, /DB or
// timeout it holds replaces the option's; the options give what it leaves
// out. So one set of options (WithPasswordFile, WithTLSCAFile, ...) can be
// shared by every node's URL. A rediss:// URL turns TLS on, verifying the
// node against the system roots unless WithTLSCAFile or WithTLS says
// otherwise; a redis:// URL with a TLS option is an error, as the two
// contradict each other. Files and variables are read once, here. Errors
// wrap ErrInvalidURL (a *URLError) or ErrInvalidOption, name the bad part
// and never hold the password.
func FromURL(rawURL string, opts ...Option) (Pool, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := newConfig(opts)
	if !u.TLS && (c.tls != nil || c.tlsFiles.set()) {
		return nil, &URLError{URL: u.redacted, Part: "scheme", Err: errors.New("redis:// is plain TCP, but TLS options are given: use rediss://")}
	}
	if u.Username != "" {
		c.username = u.Username
	}
	if u.hasPassword {
		WithPassword(u.password)(&c)
	}
	if u.DB >= 0 {
		c.db = u.DB
	}
	for name, d := range u.timeouts {
		urlParams[name](d)(&c)
	}
	return newPool(u.Addr, c, u.TLS)
}
