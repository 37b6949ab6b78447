// Package pool holds the connections to one Redis node, on
// github.com/gomodule/redigo.
//
// A quorum lock talks to N independent nodes; each gets its own Pool. New
// builds a redigo pool with safe defaults: dial, read and write timeouts are
// always set (redigo's default is none, so a frozen node would hold a
// connection forever), the number of connections is capped so that nothing
// piles up behind a frozen node, and Get waits for a free connection only as
// long as the caller's context allows. FromURL builds the same pool from a
// redis:// or rediss:// URL, the form configuration files and environment
// variables hold. FromRedigo wraps a pool the caller built, for dialers
// this package does not cover.
//
// Secrets stay out of sight: a password can come from a file
// (WithPasswordFile) or an environment variable (WithPasswordEnv) rather
// than a command line, and no error of this package holds one; a URL is
// shown with its password replaced by "xxxxx" (RedactURL). TLS takes your
// own CA and a client certificate by file name (WithTLSCAFile,
// WithTLSClientCert), or a *tls.Config (WithTLS). Files and variables are
// read once, when the pool is built, and every problem is reported then.
//
// Every round trip goes through redigo's DoContext or Script.DoContext, so
// the context's deadline is enforced on the round trip itself (ALGORITHM.md
// A3); plain Do is never used.
package pool
