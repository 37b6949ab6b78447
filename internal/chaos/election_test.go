package chaos

import (
	"fmt"
	"testing"

	"github.com/quorumlock/quorumlock/internal/redistest"
)

// In the model, an election under fire (ALGORITHM.md V1-V7): four candidate
// clients campaign for one election over and over (each its own service
// instance, with its own proxy per node), leading a short random time and
// resigning; the leader, half the time, or another candidate crashes (no
// resignation; a fresh client takes its place) or freezes (its leadership
// is lost when its extensions fail); node faults as in TestChaosProcessTier
// (at most two of five nodes at once). Two observers follow it with Observe
// and two readers ask Leader all the time. The run fails when two
// leaderships overlap (V1), a term is not greater than the one before, in
// order of leadership (V2), the fenced resource takes a stale write, a
// Leader answer is older than a leadership that began before the read
// (V4), a term is reported with another candidate's value, an observer
// receives terms out of order (V6), or leaderships stop (V7: a crashed
// leader is replaced after its TTL).
func TestChaosProcessTierElection(t *testing.T) {
	c := redistest.New(t, 5, redistest.WithAOF())
	s, err := RunElection(t.Context(), contendedConfig(t, c, "processes/election"),
		ElectionLoad{CandidateKinds: []string{CandidateCrash, CandidateFreeze}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(s.Election.Line())
	report(t, s, true)
}
