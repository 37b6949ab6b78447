//go:build docker

package redisdocker

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireDocker skips the test without Docker, or fails it when CI=true,
// as New does.
func requireDocker(t *testing.T) *dockertest.Pool {
	t.Helper()
	pool, err := dockerPool()
	switch {
	case err != nil && os.Getenv("CI") == "true":
		t.Fatalf("CI=true but Docker is unavailable: %v", err)
	case err != nil:
		t.Skipf("Docker is unavailable: %v", err)
	}
	return pool
}

func ping(t *testing.T, n *Node) {
	t.Helper()
	if reply, err := n.Do("PING"); err != nil || reply != "PONG" {
		t.Fatalf("PING %s = %v, %v; want PONG", n.Addr(), reply, err)
	}
}

func configGet(t *testing.T, n *Node, name string) string {
	t.Helper()
	reply, err := n.Do("CONFIG", "GET", name)
	pair, ok := reply.([]any)
	if err != nil || !ok || len(pair) != 2 {
		t.Fatalf("CONFIG GET %s on %s = %v, %v", name, n.Addr(), reply, err)
	}
	return string(pair[1].([]byte))
}

func set(t *testing.T, n *Node, key, value string) {
	t.Helper()
	if reply, err := n.Do("SET", key, value); err != nil || reply != "OK" {
		t.Fatalf("SET %s on %s = %v, %v", key, n.Addr(), reply, err)
	}
}

func get(t *testing.T, n *Node, key string) any {
	t.Helper()
	reply, err := n.Do("GET", key)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", key, n.Addr(), err)
	}
	if b, ok := reply.([]byte); ok {
		return string(b)
	}
	return reply
}

// unreachable asserts that a dial with a 300ms timeout fails: refused, timed
// out, or no route (the address has no container behind it).
func unreachable(t *testing.T, n *Node) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.Addr(), 300*time.Millisecond)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s succeeded; want a failure", n.Addr())
	}
	var ne net.Error
	if !(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		(errors.As(err, &ne) && ne.Timeout())) {
		t.Fatalf("dial %s: %v; want refused, unreachable or timeout", n.Addr(), err)
	}
}

func TestStartIndependentNodes(t *testing.T) {
	t.Parallel()
	c := New(t, 3)
	ips := map[string]bool{}
	for _, n := range c.Nodes() {
		ping(t, n)
		host, p, err := net.SplitHostPort(n.Addr())
		if err != nil || p != "6379" || net.ParseIP(host) == nil {
			t.Fatalf("Addr() = %q; want IP:6379", n.Addr())
		}
		ips[host] = true
		for name, want := range map[string]string{
			"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction", "dir": "/data",
		} {
			if got := configGet(t, n, name); got != want {
				t.Errorf("%s: CONFIG GET %s = %q; want %q", n.Addr(), name, got, want)
			}
		}
		if !n.Running() || n.Paused() || !n.Connected() {
			t.Errorf("%s: Running, Paused, Connected = %v, %v, %v; want true, false, true",
				n.Addr(), n.Running(), n.Paused(), n.Connected())
		}
	}
	if len(ips) != 3 || len(c.Addrs()) != 3 {
		t.Fatalf("want 3 distinct IPs, got %v", c.Addrs())
	}
	a, b := c.Nodes()[0], c.Nodes()[1]
	set(t, a, "k", "v")
	if got := get(t, a, "k"); got != "v" {
		t.Fatalf("GET k on the node written = %v; want v", got)
	}
	if got := get(t, b, "k"); got != nil {
		t.Fatalf("GET k on another node = %v; want nil (nodes must be independent)", got)
	}
}

func TestWithArgs(t *testing.T) {
	t.Parallel()
	n := New(t, 1, WithArgs("--appendfsync", "everysec")).Nodes()[0]
	if got := configGet(t, n, "appendfsync"); got != "everysec" {
		t.Fatalf("appendfsync = %q; want everysec (WithArgs overrides the default)", got)
	}
	if got := configGet(t, n, "appendonly"); got != "yes" {
		t.Fatalf("appendonly = %q; want yes (defaults kept)", got)
	}
}

func TestKillStartKeepsAOF(t *testing.T) {
	t.Parallel()
	n := New(t, 1).Nodes()[0]
	addr := n.Addr()
	set(t, n, "survivor", "1")
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if n.Running() {
		t.Fatal("Running() = true after Kill")
	}
	unreachable(t, n)
	if _, err := n.Do("PING"); err == nil {
		t.Fatal("PING succeeded on a killed node")
	}
	if err := n.Kill(); err != nil {
		t.Fatalf("Kill of a killed node: %v; want no-op", err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.Addr() != addr || !n.Running() {
		t.Fatalf("after Start: Addr %s (was %s), Running %v", n.Addr(), addr, n.Running())
	}
	ping(t, n)
	if got := get(t, n, "survivor"); got != "1" {
		t.Fatalf("GET survivor after kill+start = %v; want 1 (AOF, appendfsync always)", got)
	}
	set(t, n, "second", "2")
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, n, "second"); got != "2" {
		t.Fatalf("GET second after Restart = %v; want 2", got)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	n := New(t, 1).Nodes()[0]
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	if !n.Paused() || !n.Running() {
		t.Fatalf("Paused, Running = %v, %v; want true, true", n.Paused(), n.Running())
	}
	// A frozen server: the kernel may still accept, but no reply comes.
	conn, err := net.DialTimeout("tcp", n.Addr(), 300*time.Millisecond)
	if err == nil {
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err = conn.Write([]byte("PING\r\n")); err == nil {
			var buf [16]byte
			var k int
			k, err = conn.Read(buf[:])
			if err == nil {
				t.Fatalf("paused node answered %q", buf[:k])
			}
		}
		conn.Close()
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("talking to a paused node: %v; want a timeout", err)
	}
	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	if n.Paused() {
		t.Fatal("Paused() = true after Resume")
	}
	ping(t, n)
}

func TestDisconnectReconnect(t *testing.T) {
	t.Parallel()
	c := New(t, 2)
	n, other := c.Nodes()[0], c.Nodes()[1]
	addr := n.Addr()
	set(t, n, "k", "v")
	if err := n.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if n.Connected() || !n.Running() {
		t.Fatalf("Connected, Running = %v, %v; want false, true", n.Connected(), n.Running())
	}
	unreachable(t, n)
	ping(t, other) // a partition of one node only
	if err := n.Disconnect(); err != nil {
		t.Fatalf("second Disconnect: %v; want no-op", err)
	}
	if err := n.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if n.Addr() != addr || !n.Connected() {
		t.Fatalf("after Reconnect: Addr %s (was %s), Connected %v", n.Addr(), addr, n.Connected())
	}
	ping(t, n)
	if got := get(t, n, "k"); got != "v" {
		t.Fatalf("GET k after reconnect = %v; want v", got)
	}
	// A node killed while partitioned starts partitioned and answers once
	// reconnected.
	if err := n.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	unreachable(t, n)
	if err := n.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, n, "k"); got != "v" {
		t.Fatalf("GET k after restart while partitioned = %v; want v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	n := New(t, 1).Nodes()[0]
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				n.Running()
				n.Paused()
				n.Connected()
				n.Do("PING")
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			if err := n.Pause(); err != nil {
				t.Error(err)
			}
			if err := n.Resume(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	ping(t, n)
}

// listLabelled returns the containers and networks labelled with cluster.
func listLabelled(t *testing.T, client *docker.Client, label string) ([]docker.APIContainers, []docker.Network) {
	t.Helper()
	ctrs, err := client.ListContainers(docker.ListContainersOptions{
		All: true, Filters: map[string][]string{"label": {label}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := client.FilteredListNetworks(docker.NetworkFilterOpts{"label": {label: true}})
	if err != nil {
		t.Fatal(err)
	}
	return ctrs, nets
}

func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	c := New(t, 2) // Cleanup's second Close checks idempotence
	n := c.Nodes()[0]
	if err := n.Pause(); err != nil { // a paused container must go too
		t.Fatal(err)
	}
	if err := c.Nodes()[1].Kill(); err != nil { // and a stopped one
		t.Fatal(err)
	}
	label := labelCluster + "=" + c.Network()
	client := c.client
	if ctrs, nets := listLabelled(t, client, label); len(ctrs) != 2 || len(nets) != 1 {
		t.Fatalf("before Close: %d containers, %d networks labelled %s; want 2, 1", len(ctrs), len(nets), label)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ctrs, nets := listLabelled(t, client, label); len(ctrs) != 0 || len(nets) != 0 {
		t.Fatalf("after Close: %d containers, %d networks labelled %s remain", len(ctrs), len(nets), label)
	}
	if err := n.Resume(); err == nil {
		t.Fatal("Resume after Close succeeded")
	}
	client.HTTPClient.CloseIdleConnections()
}

// TestReapLeftovers fakes a crashed run: a network and a container labelled
// with the pid of a process that has exited. Start must remove both.
func TestReapLeftovers(t *testing.T) {
	t.Parallel()
	pool := requireDocker(t)
	image, err := Image()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := cmd.Process.Pid
	if processAlive(deadPID) {
		t.Skipf("pid %d was reused already", deadPID)
	}
	ghost := &Cluster{client: pool.Client, closed: make(chan struct{})}
	if err := ghost.createNetwork(); err != nil {
		t.Fatal(err)
	}
	n, err := ghost.startNode(0, image, defaultArgs)
	if err != nil {
		ghost.Close()
		t.Fatal(err)
	}
	label := labelCluster + "=" + ghost.name
	// Relabel as the dead process: labels are fixed at creation, so create
	// a second container and a second network that carry the dead pid.
	l := labels(ghost.name + "-dead")
	l[labelPID] = strconv.Itoa(deadPID)
	deadNet, err := pool.Client.CreateNetwork(docker.CreateNetworkOptions{Name: ghost.name + "-dead", Labels: l})
	if err != nil {
		ghost.Close()
		t.Fatal(err)
	}
	_, err = pool.Client.CreateContainer(docker.CreateContainerOptions{
		Name:       ghost.name + "-dead-1",
		Config:     &docker.Config{Image: image, Labels: l},
		HostConfig: &docker.HostConfig{NetworkMode: ghost.name + "-dead"},
	})
	if err != nil {
		removeCluster(pool.Client, "", deadNet.ID, nil)
		ghost.Close()
		t.Fatal(err)
	}
	deadLabel := labelCluster + "=" + ghost.name + "-dead"
	reapLeftovers(pool.Client)
	if ctrs, nets := listLabelled(t, pool.Client, deadLabel); len(ctrs) != 0 || len(nets) != 0 {
		t.Errorf("after reaping: %d containers, %d networks of a dead pid remain", len(ctrs), len(nets))
	}
	// The live process's cluster is left alone.
	if ctrs, nets := listLabelled(t, pool.Client, label); len(ctrs) != 1 || len(nets) != 1 {
		t.Errorf("after reaping: %d containers, %d networks of this process; want 1, 1", len(ctrs), len(nets))
	}
	ping(t, n)
	if err := ghost.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestImageEnv(t *testing.T) {
	t.Setenv("REDIS_IMAGE", "example.invalid/redis:test")
	if got, err := Image(); err != nil || got != "example.invalid/redis:test" {
		t.Fatalf("Image() = %q, %v; want $REDIS_IMAGE", got, err)
	}
	os.Unsetenv("REDIS_IMAGE")
	requireDocker(t)
	got, err := Image()
	if err != nil || (got != OfficialImage && got != LocalImage) {
		t.Fatalf("Image() = %q, %v; want %s or %s", got, err, OfficialImage, LocalImage)
	}
}
