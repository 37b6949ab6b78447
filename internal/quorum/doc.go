// Package quorum is the decision of a Redlock round: Q = N/2+1 comes from
// the configured N (ALGORITHM.md A5); a round succeeds at Q grants and fails
// once N-Q+1 nodes refused or failed (A6), whatever the nodes still silent
// would say. It is pure: redlock feeds it the answers as they arrive.
//
// This package is internal: its API may change at any time.
package quorum
