package redistest

import (
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

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed by the only goroutine that calls cmd.Wait
	paused bool
	closed bool
}

// startNode creates the node's directory and starts it, retrying on a fresh
// port when another process took the probed one before redis-server bound it.
func startNode(bin string, cfg config) (*Node, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	n := &Node{bin: bin, dir: dir, password: cfg.password}
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
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", filepath.Join(dir, logName),
		"--daemonize", "no", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction",
		// No RDB snapshots in either mode: they fork, and AOF alone is the
		// durability under test.
		"--save", "",
	}
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

// launch starts the process and waits for PING. The caller holds n.mu or
// has not yet shared n.
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

func (n *Node) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("redistest: redis-server on %s exited during startup (%v)%s",
				n.addr, n.cmd.ProcessState, n.logTail())
		default:
		}
		// The answer must come from our own process: another server on
		// the port (ours failed to bind) would answer PING too.
		reply, err := n.do(200*time.Millisecond, "INFO", "server")
		if info, ok := reply.([]byte); err == nil && ok {
			if strings.Contains(string(info), fmt.Sprintf("process_id:%d\r\n", n.cmd.Process.Pid)) {
				return nil
			}
			err = fmt.Errorf("another process answers on %s", n.addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within %v: %v%s",
				n.addr, readyTimeout, err, n.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
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
// port and directory, waiting until it answers PING.
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

// Start starts a killed node again; it is a no-op if the node is running.
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
	conn, err := redis.Dial("tcp", n.addr,
		redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout),
		redis.DialPassword(n.password))
	if err != nil {
		return nil, fmt.Errorf("redistest: dial %s: %w", n.addr, err)
	}
	defer conn.Close()
	reply, err := conn.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s on %s: %w", cmd, n.addr, err)
	}
	return reply, nil
}
