package redistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

const (
	readyTimeout = 10 * time.Second
	doTimeout    = 2 * time.Second
	portAttempts = 3
	logName      = "redis.log"
	stderrName   = "stderr.log" // catches config errors printed before the log file is opened
)

// Node is one redis-server process. Its address and directory never change,
// so a restarted node keeps its port and, with WithAOF, its data. All methods
// are safe for concurrent use.
type Node struct {
	bin, addr, dir, password string
	args                     []string
	tls                      *tls.Config // client side, for a node started WithTLS; nil: plain TCP

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed by the only goroutine that calls cmd.Wait
	paused bool
	closed bool
}

// startNode creates the node's directory and starts it, retrying on a fresh
// port when another process took the probed one before redis-server bound it.
func startNode(bin string, cfg config) (*Node, error) {
	var clientTLS *tls.Config
	if cfg.tls != nil {
		var err error
		if clientTLS, err = cfg.tls.clientConfig(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	n := &Node{bin: bin, dir: dir, password: cfg.password, tls: clientTLS}
	for range portAttempts {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		n.args = serverArgs(port, dir, cfg)
		os.Remove(filepath.Join(dir, logName)) // so bindFailed sees only this attempt
		if err = n.launch(); err == nil {
			return n, nil
		}
		if !n.bindFailed() {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

func serverArgs(port int, dir string, cfg config) []string {
	args := []string{"--port", strconv.Itoa(port)}
	if cfg.tls != nil {
		// TLS only: the plain port is off, so nothing reaches the node
		// without a handshake. Clients need no certificate of their own
		// unless WithTLSClientAuth asks for one.
		authClients := "no"
		if cfg.tls.clientCertFile != "" {
			authClients = "yes"
		}
		args = []string{"--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", cfg.tls.certFile, "--tls-key-file", cfg.tls.keyFile,
			"--tls-ca-cert-file", cfg.tls.caFile, "--tls-auth-clients", authClients}
	}
	args = append(args, "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", filepath.Join(dir, logName),
		"--daemonize", "no", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction",
		// No RDB snapshots in either mode: they fork, and AOF alone is the
		// durability under test.
		"--save", "")
	if cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if cfg.password != "" {
		args = append(args, "--requirepass", cfg.password)
	}
	return append(args, cfg.args...)
}

// freePort asks the kernel for an unused loopback port. It is only a hint:
// the port is free again once closed, hence the retries in startNode.
// handedOut holds the ports given to nodes of this process: the kernel may
// offer a port again once its probe listener is closed, before the node
// that got it has bound it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func freePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("redistest: find free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("redistest: no free port found")
}

// launch starts the process and waits until it is ready (see ready). The
// caller holds n.mu or has not yet shared n.
func (n *Node) launch() error {
	out, err := os.OpenFile(filepath.Join(n.dir, stderrName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redistest: %s: %w", n.addr, err)
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out // an *os.File needs no copying goroutine
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	out.Close()
	if err != nil {
		return fmt.Errorf("redistest: start %s on %s: %w", n.bin, n.addr, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	if err := n.waitReady(); err != nil {
		n.kill()
		return err
	}
	return nil
}

// waitReady polls until the node is ready, its process exits or
// readyTimeout passes.
func (n *Node) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("redistest: redis-server on %s exited during startup (%v)%s",
				n.addr, n.cmd.ProcessState, n.logTail())
		default:
		}
		err := n.ready(200 * time.Millisecond)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on %s did not answer PING with PONG within %v: %v%s",
				n.addr, readyTimeout, err, n.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready reports, with nil, that our process serves commands. The port
// answering is not enough: while it loads its data (AOF, RDB) the server
// answers INFO but refuses every other command with LOADING, so the node is
// ready only once PING gets PONG.
func (n *Node) ready(timeout time.Duration) error {
	conn, err := n.dial(timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The answer must come from our own process: another server on
	// the port (ours failed to bind) would answer PING too.
	info, err := redis.String(conn.Do("INFO", "server"))
	if err != nil {
		return fmt.Errorf("redistest: INFO on %s: %w", n.addr, err)
	}
	if !strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", n.cmd.Process.Pid)) {
		return fmt.Errorf("redistest: another process answers on %s", n.addr)
	}
	pong, err := redis.String(conn.Do("PING"))
	if err != nil {
		return fmt.Errorf("redistest: PING on %s: %w", n.addr, err) // e.g. LOADING
	}
	if pong != "PONG" {
		return fmt.Errorf("redistest: PING on %s = %q, want PONG", n.addr, pong)
	}
	return nil
}

func (n *Node) bindFailed() bool {
	b, _ := os.ReadFile(filepath.Join(n.dir, logName))
	return strings.Contains(string(b), "Address already in use")
}

// logTail returns the last lines of the server's output for error messages.
func (n *Node) logTail() string {
	var sb strings.Builder
	for _, name := range []string{stderrName, logName} {
		path := filepath.Join(n.dir, name)
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) == 1 && lines[0] == "" {
			continue
		}
		lines = lines[max(0, len(lines)-15):]
		fmt.Fprintf(&sb, "\n--- tail of %s ---\n%s", path, strings.Join(lines, "\n"))
	}
	return sb.String()
}

// running reports whether the process is alive; the caller holds n.mu.
func (n *Node) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill stops the process and waits for it; the caller holds n.mu.
func (n *Node) kill() error {
	if !n.running() {
		return nil
	}
	// The group (Setpgid) also holds any fork child, such as an AOF rewrite,
	// which would otherwise keep the listening socket open.
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	if err := n.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: kill %s: %w", n.addr, err)
	}
	<-n.exited
	n.paused = false
	return nil
}

func (n *Node) signal(sig os.Signal) error {
	if !n.running() {
		return fmt.Errorf("redistest: %s is not running", n.addr)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("redistest: signal %v to %s: %w", sig, n.addr, err)
	}
	return nil
}

// close kills the node for good and removes its directory.
func (n *Node) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	err := n.kill()
	if rmErr := os.RemoveAll(n.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("redistest: remove %s: %w", n.dir, rmErr))
	}
	return err
}

// Addr returns the node's "127.0.0.1:port" address.
func (n *Node) Addr() string { return n.addr }

// Dir returns the node's data directory, which holds redis.log.
func (n *Node) Dir() string { return n.dir }

// Kill sends SIGKILL and waits for the process to exit, after which the port
// refuses connections. Killing a node that is down is a no-op.
func (n *Node) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.kill()
}

// Pause sends SIGSTOP: the socket stays open but nothing answers, like a
// stalled or partitioned server.
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.paused = true
	return nil
}

// Resume sends SIGCONT to a paused node.
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.paused = false
	return nil
}

// Restart kills the node if it is running and starts it again on the same
// port and directory, waiting until it answers PING with PONG: with WithAOF,
// until it has loaded its data.
func (n *Node) Restart() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("redistest: %s: cluster is closed", n.addr)
	}
	if err := n.kill(); err != nil {
		return err
	}
	return n.launch()
}

// Start starts a killed node again and waits as Restart does; it is a
// no-op if the node is running.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("redistest: %s: cluster is closed", n.addr)
	}
	if n.running() {
		return nil
	}
	return n.launch()
}

// Running reports whether the process is alive (paused counts as running).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running()
}

// Paused reports whether the node is running but stopped by Pause.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.running()
}

// Do sends one command on a fresh connection with a 2s timeout, so it works
// (or fails fast) whatever state the node is in. Replies are as in redigo:
// string, int64, []byte, nil, []any; an error reply is returned as an error.
func (n *Node) Do(cmd string, args ...any) (any, error) {
	return n.do(doTimeout, cmd, args...)
}

// FlushAll deletes every key on the node.
func (n *Node) FlushAll() error {
	_, err := n.Do("FLUSHALL")
	return err
}

// do does not take n.mu: a paused node must not block Resume for the timeout.
func (n *Node) do(timeout time.Duration, cmd string, args ...any) (any, error) {
	conn, err := n.dial(timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	reply, err := conn.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s on %s: %w", cmd, n.addr, err)
	}
	return reply, nil
}

// dial opens a connection to the node, over TLS for a node started WithTLS,
// with every step (connect, handshake, AUTH, each command) bounded by
// timeout.
func (n *Node) dial(timeout time.Duration) (redis.Conn, error) {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout),
		redis.DialPassword(n.password),
	}
	if n.tls != nil {
		opts = append(opts, redis.DialUseTLS(true), redis.DialTLSConfig(n.tls),
			redis.DialTLSHandshakeTimeout(timeout)) // redigo's default is 10 s
	}
	conn, err := redis.Dial("tcp", n.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("redistest: dial %s: %w", n.addr, err)
	}
	return conn, nil
}
