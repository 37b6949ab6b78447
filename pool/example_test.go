package pool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/quorumlock/quorumlock/internal/redistest"
	"github.com/quorumlock/quorumlock/pool"
	"github.com/quorumlock/quorumlock/redlock"
)

// exampleNodes are the nodes the examples run on, started on first use and
// closed by TestMain.
var (
	exampleNodes *redistest.Cluster
	exampleOnce  sync.Once
	exampleEnv   exampleTLS
)

// exampleTLS is what a deployment hands a program: the nodes' URLs (without
// the password), the CA that signed their certificates, the program's
// client certificate and key, and the file holding its ACL user's password.
type exampleTLS struct {
	urls                                    []string
	caFile, certFile, keyFile, passwordFile string
}

// exampleTLSNodes starts three local TLS-only nodes that require a client
// certificate and know the ACL user "locker": in a real program, your
// independent Redis masters.
func exampleTLSNodes() exampleTLS {
	exampleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pool-example-")
		if err != nil {
			panic(err)
		}
		pki, err := redistest.WriteTestPKI(dir)
		if err != nil {
			panic(err)
		}
		c, err := redistest.Start(3, redistest.WithTLS(pki.ServerCert, pki.ServerKey, pki.CA),
			redistest.WithTLSClientAuth(pki.ClientCert, pki.ClientKey), redistest.WithPassword(adminPassword))
		if err != nil {
			panic("examples need redis-server: " + err.Error())
		}
		exampleNodes = c
		env := exampleTLS{caFile: pki.CA, certFile: pki.ClientCert, keyFile: pki.ClientKey,
			passwordFile: filepath.Join(dir, "password")}
		for _, n := range c.Nodes() {
			args := append([]any{"SETUSER", "locker", "reset", "on", ">" + lockerPassword}, redistest.LockerRights...)
			if _, err := n.Do("ACL", args...); err != nil {
				panic(err)
			}
			env.urls = append(env.urls, "rediss://locker@"+n.Addr()+"/0")
		}
		if err := os.WriteFile(env.passwordFile, []byte(lockerPassword+"\n"), 0o600); err != nil {
			panic(err)
		}
		exampleEnv = env
	})
	return exampleEnv
}

// A lock on nodes reached over TLS, each checked against your own CA, with
// a client certificate, as an ACL user whose password is read from a file.
// The README's "Configuration" shows it.
func ExampleFromURL() {
	env := exampleTLSNodes()
	urls, caFile, certFile, keyFile, passwordFile := env.urls, env.caFile, env.certFile, env.keyFile, env.passwordFile

	ctx := context.Background()
	var pools []pool.Pool
	for _, url := range urls { // rediss://locker@redis-a.example:6380/0, ...
		p, err := pool.FromURL(url,
			pool.WithPasswordFile(passwordFile),
			pool.WithTLSCAFile(caFile),
			pool.WithTLSClientCert(certFile, keyFile))
		if err != nil {
			fmt.Println(err) // names the bad part of the URL, never the password
			return
		}
		defer p.Close()
		// Connect once at start-up: a refused certificate or password
		// shows here, with its reason, rather than as a lock's timeout.
		if _, err := pool.Do(ctx, p, "PING"); err != nil {
			fmt.Println(err)
			return
		}
		pools = append(pools, p)
	}
	client, err := redlock.New(pools)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close() // before the pools

	lock, err := client.Lock(ctx, "nightly-report")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lock.Unlock(ctx)
	fmt.Println("locked over TLS")
	// Output: locked over TLS
}

// A URL that cannot name a node: the error names the part at fault and
// shows the URL with its password hidden.
func ExampleParseURL() {
	_, err := pool.ParseURL("redis://locker:s3cret@redis-a.example:637900/0")
	fmt.Println(err)
	u, _ := pool.ParseURL("rediss://locker:s3cret@redis-a.example/2?dial_timeout=2s")
	fmt.Println(u, u.TLS, u.Addr, u.Username, u.DB)
	// Output:
	// pool: invalid URL "redis://locker:xxxxx@redis-a.example:637900/0": port: 637900: want 1 to 65535
	// rediss://locker:xxxxx@redis-a.example/2?dial_timeout=2s true redis-a.example:6379 locker 2
}
