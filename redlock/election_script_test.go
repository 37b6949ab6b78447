package redlock

import (
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// V3: the record is written only where the lock key holds the leader's
// value, never over a higher term nor over another leadership of the same
// term; a read reports it only while the key holds that value (V4).
func TestLeaderRecordOnlyByItsHolder(t *testing.T) {
	n := redistest.New(t, 1).Nodes()[0]
	key, rec := LockKey(ElectionPrefix+"x"), LeaderKey("x")
	publish := func(value, term string) int {
		t.Helper()
		got, err := redis.Int(n.Do("EVAL", electSrc, 2, key, rec, "publish", value, term, "pub-"+value))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	read := func() []string {
		t.Helper()
		got, err := redis.Strings(n.Do("EVAL", electSrc, 2, key, rec, "read"))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if publish("v1", "5") != 0 {
		t.Fatal("published with no lock key")
	}
	n.Do("SET", key, "v1")
	if publish("v2", "5") != 0 {
		t.Fatal("published for a value the key does not hold")
	}
	if publish("v1", "5") != 1 || publish("v1", "5") != 1 {
		t.Fatal("the holder's publish (and its repetition) refused")
	}
	if got := read(); len(got) != 2 || got[0] != "5" || got[1] != "pub-v1" {
		t.Fatalf("read = %q, want term 5, value pub-v1", got)
	}
	n.Do("SET", key, "v2")
	if got := read(); len(got) != 0 {
		t.Fatalf("read = %q with the key holding another value, want nothing", got)
	}
	if publish("v2", "4") != 0 || publish("v2", "5") != 0 {
		t.Fatal("published over a higher term, or over another leadership of the same term")
	}
	if publish("v2", "6") != 1 {
		t.Fatal("a higher term's publish refused")
	}
	n.Do("DEL", key)
	if got := read(); len(got) != 0 {
		t.Fatalf("read = %q with no lock key, want nothing", got)
	}
}
