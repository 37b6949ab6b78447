package redistest

import (
	"os"
	"path/filepath"
	"testing"
)

// LockerRights are the ACL rules of the README's minimal user for the lock
// (section "Redis ACL users"), with PTTL (status reads a holder's TTL) and
// SELECT (a URL's /DB).
var LockerRights = []any{"~redlock:*", "&redlock:*", "-@all",
	"+set", "+get", "+del", "+pexpire", "+incr", "+type", "+hgetall", "+hget", "+hset", "+hdel", "+time",
	"+eval", "+evalsha", "+script|load", "+publish", "+subscribe", "+unsubscribe", "+ping",
	"+info", "+config|get", "+pttl", "+select"}

// TLSACL is a set of TLS-only nodes that require a client certificate,
// whose default user has a password of its own and whose user "locker"
// has LockerRights and nothing more.
type TLSACL struct {
	*Cluster
	PKI          TestPKI
	PasswordFile string // locker's password and a newline
}

// StartTLSACL starts n such nodes, stopped when t ends: the default user's
// password is admin, locker's is locker.
func StartTLSACL(t testing.TB, n int, admin, locker string) *TLSACL {
	t.Helper()
	dir := t.TempDir()
	pki, err := WriteTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := New(t, n, WithTLS(pki.ServerCert, pki.ServerKey, pki.CA),
		WithTLSClientAuth(pki.ClientCert, pki.ClientKey), WithPassword(admin))
	for _, node := range c.Nodes() {
		args := append([]any{"SETUSER", "locker", "reset", "on", ">" + locker}, LockerRights...)
		if _, err := node.Do("ACL", args...); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", node.Addr(), err)
		}
	}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(locker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &TLSACL{Cluster: c, PKI: pki, PasswordFile: pw}
}
