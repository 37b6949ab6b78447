package quorum

import "testing"

// outcomes enumerates every assignment of results to n nodes.
func outcomes[T any](n int, results []T) [][]T {
	all := [][]T{{}}
	for range n {
		var next [][]T
		for _, prefix := range all {
			for _, r := range results {
				next = append(next, append(append([]T(nil), prefix...), r))
			}
		}
		all = next
	}
	return all
}

// A5, A6: for N = 1, 3, 5, 7 and every sequence of answers, the tally is
// decided exactly at the first answer after which Q grants are in, or N-Q+1
// refusals and failures are, and succeeds exactly when Q granted.
func TestTallyDecidesAtTheFirstDecisiveAnswer(t *testing.T) {
	for _, n := range []int{1, 3, 5, 7} {
		q := n/2 + 1
		if got := Majority(n); got != q {
			t.Fatalf("Majority(%d) = %d, want %d", n, got, q)
		}
		for _, seq := range outcomes(n, []Result{Granted, Refused, Failed}) {
			tally := NewTally(n)
			var granted, against int
			decidedAt := -1
			for i, r := range seq {
				if tally.Decided() {
					break
				}
				tally.Add(r)
				if r == Granted {
					granted++
				} else {
					against++
				}
				if decidedAt < 0 && (granted >= q || against >= n-q+1) {
					decidedAt = i
				}
				if got, want := tally.Decided(), decidedAt == i; got != want {
					t.Fatalf("N=%d seq=%v: Decided() = %v after answer %d, want %v", n, seq, got, i, want)
				}
			}
			if decidedAt < 0 {
				t.Fatalf("N=%d seq=%v: never decided after all %d answers", n, seq, n)
			}
			if got, want := tally.Succeeded(), granted >= q; got != want {
				t.Fatalf("N=%d seq=%v: Succeeded() = %v, want %v (granted %d, Q %d)", n, seq, got, want, granted, q)
			}
			if tally.Succeeded() && tally.Lost() {
				t.Fatalf("N=%d seq=%v: both Succeeded and Lost", n, seq)
			}
		}
	}
}

func TestTallyString(t *testing.T) {
	tl := NewTally(5)
	tl.Add(Granted)
	tl.Add(Refused)
	tl.Add(Failed)
	if got, want := tl.String(), "1 granted, 1 refused, 1 failed, 2 no answer of 5 (need 3)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
