package chaos

import (
	"math"
	"testing"
	"time"
)

// The contention workload's measures: each must see the unfairness or the
// stall it exists for.
func TestFairnessMeasures(t *testing.T) {
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	for _, c := range []struct {
		xs          []float64
		jain, share float64
	}{
		{[]float64{3, 3, 3, 3}, 1, 1},
		{[]float64{4, 0, 0, 0}, 0.25, 0},
		{[]float64{1, 2, 3}, 36.0 / 42, 0.5},
		{nil, 0, 0},
		{[]float64{0, 0}, 0, 0},
	} {
		if got := Jain(c.xs); !near(got, c.jain) {
			t.Errorf("Jain(%v) = %v, want %v", c.xs, got, c.jain)
		}
		if got := MinShare(c.xs); !near(got, c.share) {
			t.Errorf("MinShare(%v) = %v, want %v", c.xs, got, c.share)
		}
	}

	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	iv := func(a, b int) [2]time.Time { return [2]time.Time{at(a), at(b)} }
	holds := []Hold{{Start: at(100)}, {Start: at(150)}, {Start: at(900)}, {Start: at(2000)}}
	// Waiting 0-1000 and 1500-1600: the gaps with someone waiting are
	// 0-100, 100-150, 150-900 (750), 900-1000, and 1500-1600; 1000-1500
	// and 1600-2000 nobody waited.
	waits := [][2]time.Time{iv(0, 400), iv(300, 1000), iv(1500, 1600), iv(1550, 1560)}
	if got := LongestWaitedDrought(holds, waits); got != 750*time.Millisecond {
		t.Errorf("LongestWaitedDrought = %v, want 750ms", got)
	}
	if got := LongestWaitedDrought(holds, [][2]time.Time{iv(1000, 1900)}); got != 900*time.Millisecond {
		t.Errorf("LongestWaitedDrought with no acquisition inside = %v, want 900ms", got)
	}

	if got := subtract(iv(0, 1000), [][2]time.Time{iv(100, 200), iv(900, 1100), iv(2000, 3000)}); len(got) != 2 || got[0] != iv(0, 100) || got[1] != iv(200, 900) {
		t.Errorf("subtract = %v, want [0-100 200-900]", got)
	}
	if !overlapsAny(iv(0, 100), [][2]time.Time{iv(50, 60)}) || overlapsAny(iv(0, 100), [][2]time.Time{iv(100, 200)}) ||
		!overlapsAny(iv(0, 100), [][2]time.Time{{at(90), time.Time{}}}) {
		t.Error("overlapsAny is wrong")
	}

	// A waiter fault at 100 by client 1: client 1's own acquisition does
	// not end the stall, client 2's at 600 does. One at 1000 with nothing
	// after it stalls to the end.
	hs := []Hold{{Worker: 1, Start: at(200)}, {Worker: 2, Start: at(600)}}
	if got := stallAfter([]waiterEvent{{at: at(100), client: 1}}, hs, at(5000)); got != 500*time.Millisecond {
		t.Errorf("stallAfter = %v, want 500ms", got)
	}
	if got := stallAfter([]waiterEvent{{at: at(1000), client: 1}}, hs, at(1300)); got != 300*time.Millisecond {
		t.Errorf("stallAfter at the end = %v, want 300ms", got)
	}
}
