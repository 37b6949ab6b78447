// Package quorum decides a Redlock round: it sends one request to each of N
// nodes in parallel and returns as soon as the outcome is known (ALGORITHM.md
// A3, A5, A6).
//
// The tally is pure: Q = N/2+1 comes from the configured N (A5), success is
// decided at Q grants and failure at N-Q+1 refusals or failures (A6). Run
// does the fan-out: one goroutine per node, a buffered reply channel so a
// straggler never blocks, and an After hook that each node's goroutine runs
// once the round is decided, so a failed acquisition can release a late grant
// without making the caller wait for it (A8).
//
// This package is internal: its API may change at any time.
package quorum
