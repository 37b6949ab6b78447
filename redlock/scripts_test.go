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
	for name, s := range map[string]*redis.Script{"acquire": acquireScript, "release": releaseScript, "extend": extendScript, "fence": fenceScript} {
		src := map[string]string{"acquire": acquireSrc, "release": releaseSrc, "extend": extendSrc, "fence": fenceSrc}[name]
		got, err := redis.String(c.Nodes()[0].Do("SCRIPT", "LOAD", src))
		if err != nil {
			t.Fatalf("SCRIPT LOAD %s: %v", name, err)
		}
		if got != s.Hash() {
			t.Fatalf("%s: SCRIPT LOAD = %s, Hash() = %s", name, got, s.Hash())
		}
		if !strings.HasPrefix(src, "-- "+name+":") {
			t.Fatalf("%s.lua does not open with its header comment", name)
		}
	}
}
