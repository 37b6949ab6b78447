package redlock

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/clock"
)

// M1: a value is a fresh secret (A1), one space, and the holder part,
// which decodes to this process, the label and the attempt's time; hosts
// and labels with quotes or backslashes stay valid JSON.
func TestValueCarriesHolder(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1764620000123)
	c := &Client{holder: holderHead(), clock: clock.NewFake(at)}
	cfg := defaultConfig()
	cfg.holder = `say "hi" \ there`
	v1, v2 := c.value(&cfg), c.value(&cfg)
	s1, part, ok := strings.Cut(v1, " ")
	s2, _, _ := strings.Cut(v2, " ")
	if !ok || len(s1) != 26 || s1 == s2 {
		t.Fatalf("values %q, %q; want distinct 26-character secrets before a space", v1, v2)
	}
	h, err := parseHolder([]byte(part))
	host, _ := os.Hostname()
	if err != nil || h.Host != host || h.PID != os.Getpid() || h.Label != cfg.holder || !h.Since.Equal(at) {
		t.Fatalf("holder %+v, %v; want %q, %d, %q, %v", h, err, host, os.Getpid(), cfg.holder, at)
	}
	cfg.holder = ""
	if v := c.value(&cfg); strings.Contains(v, `"l":`) {
		t.Errorf("value without a label %q; want no \"l\"", v)
	}
	if got := string(appendJSONString(nil, "a\x01\"\\é")); got != `"a\u0001\"\\é"` {
		t.Errorf("appendJSONString = %s", got)
	}
}

// M2: the verdict names a holder only when Q of the configured nodes hold
// one value (one fingerprint); fewer than Q answers say nothing (A5).
func TestHolderVerdict(t *testing.T) {
	t.Parallel()
	alice := &Holder{Host: "a", PID: 1}
	held := func(fp string) NodeHolder { return NodeHolder{State: KeyHeld, Fingerprint: fp, Holder: alice} }
	free := NodeHolder{State: KeyFree}
	reserved := NodeHolder{State: KeyReserved, Fingerprint: "rrrr"}
	other := NodeHolder{State: KeyOther}
	down := NodeHolder{Err: errors.New("down")}
	for _, tc := range []struct {
		name   string
		nodes  []NodeHolder
		want   Verdict
		holder bool
	}{
		{"all free", []NodeHolder{free, free, free}, VerdictFree, false},
		{"quorum free", []NodeHolder{free, free, down}, VerdictFree, false},
		{"held", []NodeHolder{held("x"), held("x"), free}, VerdictHeld, true},
		{"held, one down", []NodeHolder{down, held("x"), held("x")}, VerdictHeld, true},
		{"two values", []NodeHolder{held("x"), held("y"), free}, VerdictSplit, false},
		{"minority", []NodeHolder{held("x"), free, free}, VerdictSplit, false},
		{"minority, one down", []NodeHolder{held("x"), free, down}, VerdictSplit, false},
		{"reserved", []NodeHolder{reserved, reserved, held("x")}, VerdictReserved, false},
		{"not a lock", []NodeHolder{other, other, other}, VerdictSplit, false},
		{"no quorum answered", []NodeHolder{held("x"), down, down}, VerdictUnknown, false},
		{"5 nodes, 3 agree", []NodeHolder{held("x"), held("y"), held("x"), down, held("x")}, VerdictHeld, true},
		{"5 nodes, 2 agree", []NodeHolder{held("x"), held("y"), held("x"), down, free}, VerdictSplit, false},
	} {
		st := &HolderStatus{Quorum: len(tc.nodes)/2 + 1, Nodes: tc.nodes}
		st.judge()
		if st.Verdict != tc.want || (st.Holder != nil) != tc.holder {
			t.Errorf("%s: verdict %q, holder %v; want %q, holder %v", tc.name, st.Verdict, st.Holder, tc.want, tc.holder)
		}
	}
}
