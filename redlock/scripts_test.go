package redlock

import (
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// The hashes EVALSHA sends are the ones Redis computes for the scripts.
func TestScriptHashesMatchScriptLoad(t *testing.T) {
	c := redistest.New(t, 1)
	scripts := map[string]*redis.Script{"acquire": acquireScript, "release": releaseScript, "line": lineScript, "extend": extendScript, "fence": fenceScript, "elect": electScript, "sem": semScript}
	for name, s := range scripts {
		src := map[string]string{"acquire": acquireSrc, "release": releaseSrc, "line": lineSrc, "extend": extendSrc, "fence": fenceSrc, "elect": electSrc, "sem": semSrc}[name]
		got, err := redis.String(c.Nodes()[0].Do("SCRIPT", "LOAD", src))
		if err != nil {
			t.Fatalf("SCRIPT LOAD %s: %v", name, err)
		}
		if got != s.Hash() {
			t.Fatalf("%s: SCRIPT LOAD = %s, Hash() = %s", name, got, s.Hash())
		}
		body := strings.TrimPrefix(src, lineHeadSrc)
		if !strings.HasPrefix(body, "-- "+name+":") || !strings.HasPrefix(lineHeadSrc, "-- line_head:") {
			t.Fatalf("%s.lua does not open with its header comment", name)
		}
	}
}

// GrantsKey is LineKey and ":grants", built in one allocation.
func TestGrantsKeyFollowsLineKey(t *testing.T) {
	for _, name := range []string{"", "a", "job:{x}"} {
		if got, want := GrantsKey(name), LineKey(name)+":grants"; got != want {
			t.Fatalf("GrantsKey(%q) = %q, want %q", name, got, want)
		}
		if line, grants := lineAndGrants(name); line != LineKey(name) || grants != GrantsKey(name) {
			t.Fatalf("lineAndGrants(%q) = %q, %q", name, line, grants)
		}
	}
}
