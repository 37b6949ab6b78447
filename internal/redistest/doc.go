// Package redistest starts real redis-server processes for tests and demos.
//
// Quorum behaviour (node crashes, stalls, restarts with or without an
// append-only file) can only be exercised honestly against real servers, so
// this package runs the redis-server binary rather than an in-memory fake.
// Each node listens on 127.0.0.1 on a free port, keeps its data and log in its
// own temporary directory, and can be killed (SIGKILL), paused (SIGSTOP),
// resumed and restarted on the same port and directory. Start, Restart and
// Node.Start return once the node answers PING with PONG, so a node loading
// its append-only file (which answers LOADING) is not yet ready. WithTLS
// starts TLS-only nodes; WriteTestCerts makes a throw-away CA and server
// certificate for them, WriteTestPKI a client certificate as well, which
// nodes started WithTLSClientAuth require.
//
// Tests call [New], which skips the test when redis-server is not installed
// (or fails it when CI=true) and registers cleanup. Other programs call
// [Start] and must call [Cluster.Close], which kills every process the
// cluster started, waits for each to exit and removes the temporary
// directories; nothing else on the machine is touched.
//
// The binary is taken from [WithBinary], else $REDIS_SERVER, else
// redis-server on $PATH (apt-get install redis-server).
package redistest
