// Package pool holds the connections to one Redis node, on
// github.com/gomodule/redigo.
//
// A quorum lock talks to N independent nodes; each gets its own Pool. New
// builds a redigo pool with safe defaults: dial, read and write timeouts are
// always set (redigo's default is none, so a frozen node would hold a
// connection forever), the number of connections is capped so that nothing
// piles up behind a frozen node, and Get waits for a free connection only as
// long as the caller's context allows. FromRedigo wraps a pool the caller
// built, for TLS set-ups or dialers this package does not cover.
//
// Every round trip goes through redigo's DoContext or Script.DoContext, so
// the context's deadline is enforced on the round trip itself (ALGORITHM.md
// A3); plain Do is never used.
package pool
