package quorum

import "fmt"

// Result is one node's answer in a round.
type Result int8

const (
	// Pending means the node has not answered yet.
	Pending Result = iota
	// Granted means the node did what was asked: a definite OK (A4).
	Granted
	// Refused means the node answered no: the key is held by another value,
	// or is not ours to extend or delete.
	Refused
	// Failed means an error or a timeout: not granted, but maybe applied (A4).
	Failed
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case Pending:
		return "pending"
	case Granted:
		return "granted"
	case Refused:
		return "refused"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Result(%d)", int8(r))
}

// Majority returns Q = n/2+1, the grants needed among n configured nodes (A5).
func Majority(n int) int { return n/2 + 1 }

// Tally counts the answers of one round: Q of N must grant.
type Tally struct {
	N, Q                     int
	Granted, Refused, Failed int
}

// NewTally returns an empty tally for n configured nodes, needing a
// majority (A5).
func NewTally(n int) Tally { return Tally{N: n, Q: Majority(n)} }

// NewTallyNeed returns an empty tally where need of n must grant: a round
// to a subset of the nodes, such as the fencing write-back (F3).
func NewTallyNeed(n, need int) Tally { return Tally{N: n, Q: need} }

// Add counts one node's answer. Pending is ignored.
func (t *Tally) Add(r Result) {
	switch r {
	case Granted:
		t.Granted++
	case Refused:
		t.Refused++
	case Failed:
		t.Failed++
	}
}

// Succeeded reports whether Q nodes granted.
func (t Tally) Succeeded() bool { return t.Granted >= t.Q }

// Lost reports whether success is out of reach: N-Q+1 nodes refused or
// failed, so fewer than Q can still grant (A6).
func (t Tally) Lost() bool { return t.Refused+t.Failed >= t.N-t.Q+1 }

// Decided reports whether the round's outcome is known.
func (t Tally) Decided() bool { return t.Succeeded() || t.Lost() }

// Answered returns how many nodes have answered.
func (t Tally) Answered() int { return t.Granted + t.Refused + t.Failed }

// String summarises the tally, e.g. "2 granted, 1 refused, 2 failed of 5 (need 3)".
func (t Tally) String() string {
	s := fmt.Sprintf("%d granted, %d refused, %d failed", t.Granted, t.Refused, t.Failed)
	if p := t.N - t.Answered(); p > 0 {
		s += fmt.Sprintf(", %d no answer", p)
	}
	return s + fmt.Sprintf(" of %d (need %d)", t.N, t.Q)
}
