package quorum

import "testing"

// S2, A6: for N = 1, 3, 5 and every sequence of answers over two or three
// slots, a round of choices is decided exactly at the first answer after
// which one slot has Q grants or none can reach Q with the silent nodes,
// and succeeds exactly when one slot has Q grants: grants split between
// slots never add up to a permit.
func TestChoicesDecideOnOneSlot(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		for _, k := range []int{2, 3} {
			results := []int{-2, -1} // refused, failed; 0..k-1 grant that slot
			for s := range k {
				results = append(results, s)
			}
			for _, seq := range outcomes(n, results) {
				tally, ch := NewTally(n), NewChoices()
				counts := map[int]int{}
				decidedAt := -1
				for i, r := range seq {
					if ch.Decided(tally) {
						break
					}
					switch r {
					case -2:
						tally.Add(Refused)
					case -1:
						tally.Add(Failed)
					default:
						tally.Add(Granted)
						ch.Add(r)
						counts[r]++
					}
					best := 0
					for _, c := range counts {
						best = max(best, c)
					}
					if decidedAt < 0 && (best >= tally.Q || best+n-(i+1) < tally.Q) {
						decidedAt = i
					}
					if got, want := ch.Decided(tally), decidedAt == i; got != want {
						t.Fatalf("N=%d K=%d seq=%v: Decided() = %v after answer %d, want %v", n, k, seq, got, i, want)
					}
				}
				best, bestN := -1, 0
				for s := range k {
					if counts[s] > bestN {
						best, bestN = s, counts[s]
					}
				}
				if got, want := ch.Succeeded(tally), bestN >= tally.Q; got != want {
					t.Fatalf("N=%d K=%d seq=%v: Succeeded() = %v, want %v", n, k, seq, got, want)
				}
				if ch.Best != best || ch.BestN != bestN || (best >= 0 && ch.Of(best) != bestN) {
					t.Fatalf("N=%d K=%d seq=%v: Best = %d (%d grants), want %d (%d)", n, k, seq, ch.Best, ch.BestN, best, bestN)
				}
			}
		}
	}
}

// Of returns the grants of choice (for the tests).
func (c Choices) Of(choice int) int { return c.counts[choice] }
