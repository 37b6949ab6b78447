package quorum

// Choices is the decision of a round whose grants each name a choice: a
// semaphore's attempt, where every node grants one of the K slots
// (ALGORITHM.md S2). The round succeeds when Q nodes granted the same
// choice, and is lost once no choice can reach Q, whatever the nodes still
// silent would say (A6). It counts the grants only: the refusals and
// failures stay in the round's Tally, which gives the nodes still silent.
type Choices struct {
	counts map[int]int
	// Best is the choice with the most grants so far (the lowest on a tie),
	// and BestN its grants; Best is -1 before the first grant.
	Best, BestN int
}

// NewChoices returns an empty count.
func NewChoices() Choices { return Choices{Best: -1} }

// Add counts one grant of choice.
func (c *Choices) Add(choice int) {
	if c.counts == nil {
		c.counts = map[int]int{}
	}
	c.counts[choice]++
	n := c.counts[choice]
	if n > c.BestN || (n == c.BestN && choice < c.Best) {
		c.Best, c.BestN = choice, n
	}
}

// Succeeded reports whether Q nodes granted one choice.
func (c Choices) Succeeded(t Tally) bool { return c.BestN >= t.Q }

// Lost reports whether no choice can reach Q: the best one's grants and
// every node still silent together fall short.
func (c Choices) Lost(t Tally) bool { return c.BestN+t.N-t.Answered() < t.Q }

// Decided reports whether the round's outcome is known.
func (c Choices) Decided(t Tally) bool { return c.Succeeded(t) || c.Lost(t) }
