package pool_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorumlock/quorumlock/pool"
)

// secret is the password of the URLs below; no message may show it.
const secret = "Sup3r-s3cret"

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw      string
		tls      bool
		addr     string
		user     string
		password bool
		db       int
		redacted string
	}{
		{"redis://127.0.0.1", false, "127.0.0.1:6379", "", false, -1, "redis://127.0.0.1"},
		{"redis://localhost:6380/", false, "localhost:6380", "", false, -1, "redis://localhost:6380/"},
		{"rediss://locker:" + secret + "@redis-a.example:6380/2", true, "redis-a.example:6380", "locker", true, 2,
			"rediss://locker:xxxxx@redis-a.example:6380/2"},
		{"REDISS://:" + secret + "@h/0", true, "h:6379", "", true, 0, "REDISS://:xxxxx@h/0"},
		{"redis://locker@h:1", false, "h:1", "locker", false, -1, "redis://locker@h:1"},
		{"redis://[::1]:7000/15", false, "[::1]:7000", "", false, 15, "redis://[::1]:7000/15"},
		{"redis://[::1]", false, "[::1]:6379", "", false, -1, "redis://[::1]"},
		// A password with reserved characters, escaped or not.
		{"redis://u:p%40ss%3Aw%2Fd@h", false, "h:6379", "u", true, -1, "redis://u:xxxxx@h"},
		{"redis://u:p@ss:w/d@h:6379/1", false, "h:6379", "u", true, 1, "redis://u:xxxxx@h:6379/1"},
		{"redis://h?dial_timeout=2s&read_timeout=300ms&write_timeout=1s", false, "h:6379", "", false, -1,
			"redis://h?dial_timeout=2s&read_timeout=300ms&write_timeout=1s"},
	} {
		u, err := pool.ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%s) = %v", tc.redacted, err)
			continue
		}
		if u.TLS != tc.tls || u.Addr != tc.addr || u.Username != tc.user || u.HasPassword() != tc.password || u.DB != tc.db {
			t.Errorf("ParseURL(%s) = TLS %v, Addr %q, Username %q, HasPassword %v, DB %d; want %v, %q, %q, %v, %d",
				tc.redacted, u.TLS, u.Addr, u.Username, u.HasPassword(), u.DB, tc.tls, tc.addr, tc.user, tc.password, tc.db)
		}
		if u.String() != tc.redacted {
			t.Errorf("String() = %q; want %q", u.String(), tc.redacted)
		}
	}
}

// Each bad part of a URL is named, with the URL shown without its password,
// and the password never appears, whatever the part at fault.
func TestParseURLErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		part string
		want string // also in the message
	}{
		{"127.0.0.1:6379", "scheme", "missing: want redis:// or rediss://"},
		{"http://u:" + secret + "@h:6379", "scheme", `"http": want redis or rediss`},
		{"redis:/u:" + secret + "@h", "scheme", "want redis://"},
		{"redis://u:" + secret + "@", "host", "missing"},
		{"redis://u:" + secret + "@:6379", "host", "missing"},
		{"redis://u:" + secret + "@h:", "port", "empty"},
		{"redis://u:" + secret + "@h:0", "port", "0: want 1 to 65535"},
		{"redis://u:" + secret + "@h:65536", "port", "65536: want 1 to 65535"},
		{"redis://u:" + secret + "@h:99999999999999999999", "port", "want 1 to 65535"},
		{"redis://u:" + secret + "@h:http", "port", `"http": not a number`},
		{"redis://u:" + secret + "@h:-1", "port", "not a number"},
		{"redis://u:" + secret + "@::1", "host", "in brackets"},
		{"redis://u:" + secret + "@[::1", "host", "no closing ]"},
		{"redis://u:" + secret + "@[127.0.0.1]:1", "host", "not an IPv6 address"},
		{"redis://u:" + secret + "@h h:1", "host", "not a host name"},
		{"redis://u:" + secret + "@h/x", "db", `"x": want a number >= 0`},
		{"redis://u:" + secret + "@h/-1", "db", `"-1": want a number >= 0`},
		{"redis://u:" + secret + "@h/+1", "db", `"+1"`},
		{"redis://u:" + secret + "@h/1/2", "db", `"1/2"`},
		{"redis://u:" + secret + "@h?timeout=1s", "query parameter \"timeout\"", "unknown: want dial_timeout"},
		{"redis://u:" + secret + "@h?password=x", "query parameter \"password\"", "unknown"},
		{"redis://u:" + secret + "@h?dial_timeout=fast", "query parameter \"dial_timeout\"", `"fast": want a duration`},
		{"redis://u:" + secret + "@h?dial_timeout=0s", "query parameter \"dial_timeout\"", `"0s"`},
		{"redis://u:" + secret + "@h?read_timeout=1s&read_timeout=2s", "query parameter \"read_timeout\"", "given 2 times"},
		{"redis://u:" + secret + "@h?a=%zz", "query", "invalid URL escape"},
		{"redis://u:" + secret + "@h#top", "fragment", `"top"`},
		{"redis://u%zz:" + secret + "@h", "user", "bad %-escape"},
		{"redis://u:" + secret + "%zz@h", "password", "bad %-escape"},
		// A password typed without its "@" looks like a port: neither the
		// message nor the URL it shows may quote it.
		{"redis://u:" + secret, "port", "not a number"},
		{"redis://u:" + secret + "/0", "port", "not a number"},
		// ... and so may nothing after it, up to the end, when the
		// password holds a ":", "/", "?" or "#".
		{"redis://u:pa:" + secret, "host", "in brackets"},
		{"redis://:pa:" + secret, "host", "in brackets"},
		{"redis://u:pa/" + secret, "port", "not a number"},
		{"redis://u:pa?" + secret, "port", "not a number"},
		{"redis://u:pa#" + secret, "port", "not a number"},
	} {
		_, err := pool.ParseURL(tc.raw)
		var ue *pool.URLError
		if !errors.As(err, &ue) || !errors.Is(err, pool.ErrInvalidURL) {
			t.Errorf("ParseURL(%s) = %v; want a *URLError wrapping ErrInvalidURL", pool.RedactURL(tc.raw), err)
			continue
		}
		if ue.Part != tc.part || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ": "+tc.part+": ") {
			t.Errorf("ParseURL(%s) = %v (part %q); want part %q, saying %q", pool.RedactURL(tc.raw), err, ue.Part, tc.part, tc.want)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(ue.URL, secret) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL error %q shows the password", err)
		}
		if _, ferr := pool.FromURL(tc.raw); ferr == nil || ferr.Error() != err.Error() {
			t.Errorf("FromURL(%s) = %v; want ParseURL's error %v", pool.RedactURL(tc.raw), ferr, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"redis://h:6379/0":                 "redis://h:6379/0",
		"redis://u:" + secret + "@h:1/0":   "redis://u:xxxxx@h:1/0",
		"rediss://:" + secret + "@h":       "rediss://:xxxxx@h",
		"redis://u@h":                      "redis://u@h",
		"redis://u:a@b:c@h":                "redis://u:xxxxx@h",
		"u:" + secret + "@h:6379":          "u:xxxxx@h:6379",
		"redis:/u:" + secret + "@h":        "redis:xxxxx@h",
		"redis://u:" + secret:              "redis://u:xxxxx",
		"redis://u:" + secret + "/0?x=1":   "redis://u:xxxxx",
		"redis://u:pa/" + secret:           "redis://u:xxxxx",
		"redis://u:pa:" + secret:           "redis://u:xxxxx",
		"u:pa:" + secret:                   "u:xxxxx",
		"redis://:2718281828":              "redis://:xxxxx",
		"redis://::1/0":                    "redis://::1/0",
		"redis://[::1]:6379":               "redis://[::1]:6379",
		"redis://[::1]":                    "redis://[::1]",
		"::1":                              "::1",
		"h:6379":                           "h:6379",
		"":                                 "",
		"redis://h:1/0?dial_timeout=1s#ab": "redis://h:1/0?dial_timeout=1s#ab",
	} {
		if got := pool.RedactURL(raw); got != want {
			t.Errorf("RedactURL(...) = %q; want %q", got, want)
		}
	}
}

// FromURL refuses what contradicts the URL, and options it cannot use, with
// errors that name them and not the password.
func TestFromURLRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		raw  string
		opts []pool.Option
		want string
		is   error
	}{
		{"TLS option on redis://", "redis://u:" + secret + "@h", []pool.Option{pool.WithTLSCAFile(dir + "/ca.pem")}, "scheme: redis:// is plain TCP, but TLS options are given: use rediss://", pool.ErrInvalidURL},
		{"user without password", "redis://locker@h", nil, `username "locker": needs a password`, pool.ErrInvalidOption},
		{"user with empty password", "redis://locker:@h", nil, `username "locker": empty password`, pool.ErrInvalidOption},
		{"missing CA file", "rediss://u:" + secret + "@h", []pool.Option{pool.WithTLSCAFile(dir + "/nope.pem")}, dir + "/nope.pem", pool.ErrInvalidOption},
		{"bad option beside a good URL", "redis://u:" + secret + "@h", []pool.Option{pool.WithMaxActive(0)}, "max active 0", pool.ErrInvalidOption},
		{"bad db beside", "redis://h", []pool.Option{pool.WithDB(-2)}, "db -2", pool.ErrInvalidOption},
	} {
		p, err := pool.FromURL(tc.raw, tc.opts...)
		if err == nil || p != nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: FromURL = %v, %v; want nil and an error wrapping %v, saying %q", tc.name, p, err, tc.is, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q shows the password", tc.name, err)
		}
	}
	// A URL's /DB wins over WithDB: -2 above was refused because the URL
	// named no db; with /0 the option is not used.
	p, err := pool.FromURL("redis://h/0", pool.WithDB(-2))
	if err != nil {
		t.Fatalf("FromURL with /0 and WithDB(-2) = %v; want the URL's db to win", err)
	}
	p.Close()
}
