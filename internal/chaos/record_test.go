package chaos

import (
	"testing"
	"time"
)

// The checkers themselves: each must see the fault it exists for, or a
// chaos run that finds nothing proves nothing.
func TestCheckersSeeViolations(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	holds := []Hold{
		{Name: "a", Token: 1, Start: at(0), End: at(100)},
		{Name: "a", Token: 2, Start: at(100), End: at(200)}, // touching, not overlapping
		{Name: "a", Token: 3, Start: at(150), End: at(250)}, // overlaps the one before
		{Name: "b", Token: 5, Start: at(0), End: at(50)},
		{Name: "b", Token: 4, Start: at(60), End: at(70)}, // regression
		{Name: "b", Token: 4, Start: at(80), End: at(90)}, // repeat
	}
	if got := Overlaps(holds); got != 1 {
		t.Fatalf("Overlaps = %d, want 1", got)
	}
	if reg, rep := TokenProblems(holds); reg != 1 || rep != 1 {
		t.Fatalf("TokenProblems = %d regressions, %d repeats; want 1, 1", reg, rep)
	}
	if got := LongestDrought(holds, at(0), at(1000)); got != 850*time.Millisecond {
		t.Fatalf("LongestDrought = %v, want 850ms", got)
	}
	if got := GrantedDuring(holds, [][2]time.Time{{at(55), at(95)}}, time.Millisecond); got != 2 {
		t.Fatalf("GrantedDuring = %d, want 2", got)
	}
	calls := []Call{{Took: time.Second, Budget: 100 * time.Millisecond}, {Took: 150 * time.Millisecond, Budget: 100 * time.Millisecond}, {Took: time.Hour}}
	if got := LateCalls(calls, 100*time.Millisecond); got != 1 {
		t.Fatalf("LateCalls = %d, want 1", got)
	}

	r := NewResource()
	r.Issued("x", 1)
	if !r.Write("x", 1) {
		t.Fatal("write with the current token refused")
	}
	r.Issued("x", 2) // a newer holder exists but has not written yet
	if !r.Write("x", 1) {
		t.Fatal("resource refused token 1 before it saw 2")
	}
	r.Write("x", 2)
	if r.Write("x", 1) {
		t.Fatal("resource accepted token 1 after 2")
	}
	if acc, rej, stale := r.Counts(); acc != 3 || rej != 1 || stale != 1 {
		t.Fatalf("Counts = %d accepted, %d rejected, %d stale accepted; want 3, 1, 1", acc, rej, stale)
	}
}
