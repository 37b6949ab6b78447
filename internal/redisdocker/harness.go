package redisdocker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

const (
	// Labels on every container and network, so leftovers can be found.
	labelHarness = "io.quorumlock.redisdocker"
	labelCluster = "io.quorumlock.redisdocker.cluster" // the network name
	labelPID     = "io.quorumlock.redisdocker.pid"
	labelHost    = "io.quorumlock.redisdocker.host"

	port          = "6379"
	maxNodes      = 200
	firstHostByte = 10 // node i gets 10.213.X.(10+i)
	netAttempts   = 32
	pingTimeout   = 5 * time.Second
	readyTimeout  = 20 * time.Second
	stopTimeout   = 15 * time.Second
	settleFor     = 150 * time.Millisecond
	doTimeout     = 2 * time.Second
)

// defaultArgs is the image's CMD, repeated because arguments replace CMD and
// because redis:7's own CMD has no persistence settings.
var defaultArgs = []string{
	"--bind", "0.0.0.0", "--protected-mode", "no",
	"--appendonly", "yes", "--appendfsync", "always",
	"--maxmemory-policy", "noeviction", "--dir", "/data",
}

// errNoDocker marks an unreachable Docker daemon, which New turns into a skip.
var errNoDocker = errors.New("no Docker daemon is reachable")

type config struct {
	args []string
}

// Option configures the nodes started by Start and New.
type Option func(*config)

// WithArgs appends redis-server arguments after the defaults (AOF with
// appendfsync always, noeviction, /data), so they override them, e.g.
// WithArgs("--appendfsync", "everysec").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

var poolOnce struct {
	sync.Once
	pool *dockertest.Pool
	err  error
}

// dockerPool connects to the daemon named by DOCKER_HOST (or the default
// socket) once per process.
func dockerPool() (*dockertest.Pool, error) {
	poolOnce.Do(func() {
		pool, err := dockertest.NewPool("")
		if err != nil {
			poolOnce.err = fmt.Errorf("redisdocker: %w: %v", errNoDocker, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		if err := pool.Client.PingWithContext(ctx); err != nil {
			poolOnce.err = fmt.Errorf("redisdocker: %w: %v", errNoDocker, err)
			return
		}
		poolOnce.pool = pool
	})
	return poolOnce.pool, poolOnce.err
}

// Cluster is a set of independent Redis masters (not a Redis Cluster), each
// in its own container on a network of its own.
type Cluster struct {
	client *docker.Client
	name   string // network name, also the container name prefix
	netID  string
	subnet string // "10.213.X." prefix
	nodes  []*Node

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Start creates a bridge network and n containers on it and waits until each
// answers PING. On error nothing is left behind. The caller must call Close.
func Start(n int, opts ...Option) (*Cluster, error) {
	if n < 1 || n > maxNodes {
		return nil, fmt.Errorf("redisdocker: node count must be 1..%d, got %d", maxNodes, n)
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	pool, err := dockerPool()
	if err != nil {
		return nil, err
	}
	image, err := Image()
	if err != nil {
		return nil, err
	}
	reapLeftovers(pool.Client)
	c := &Cluster{client: pool.Client, closed: make(chan struct{})}
	if err := c.createNetwork(); err != nil {
		return nil, err
	}
	args := append(append([]string(nil), defaultArgs...), cfg.args...)
	c.nodes = make([]*Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.nodes[i], errs[i] = c.startNode(i, image, args) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// New starts n nodes for a test and closes them in t.Cleanup. An unreachable
// Docker daemon skips the test, or fails it when CI=true so CI cannot
// silently lose coverage; any other failure fails the test.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c, err := Start(n, opts...)
	switch {
	case errors.Is(err, errNoDocker) && os.Getenv("CI") == "true":
		t.Fatalf("redisdocker: CI=true but Docker is unavailable: %v", err)
	case errors.Is(err, errNoDocker):
		t.Skipf("redisdocker: skipping, Docker is unavailable: %v", err)
	case err != nil:
		t.Fatalf("redisdocker: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("redisdocker: close: %v", err)
		}
	})
	return c
}

// Nodes returns the nodes in start order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Addrs returns the "IP:6379" address of each node in start order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Network returns the name of the cluster's Docker network.
func (c *Cluster) Network() string { return c.name }

// Close force-removes every container of the cluster (paused or killed ones
// included) with its volumes, then the network. It is idempotent; later
// calls return the first call's result. Node methods fail afterwards.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.closeErr = removeCluster(c.client, c.name, c.netID, c.containerIDs())
		// The daemon connection pool would otherwise keep idle connections
		// (and their goroutines) until the process ends.
		c.client.HTTPClient.CloseIdleConnections()
	})
	return c.closeErr
}

func (c *Cluster) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// containerIDs lists the nodes' containers and any other container labelled
// with the cluster, e.g. one whose start failed half-way.
func (c *Cluster) containerIDs() []string {
	var ids []string
	for _, n := range c.nodes {
		if n != nil {
			ids = append(ids, n.id)
		}
	}
	listed, err := c.client.ListContainers(docker.ListContainersOptions{
		All:     true,
		Filters: map[string][]string{"label": {labelCluster + "=" + c.name}},
	})
	if err == nil {
		for _, ctr := range listed {
			ids = append(ids, ctr.ID)
		}
	}
	return ids
}

// createNetwork creates a bridge network on a random 10.213.X.0/24, trying
// another X when the subnet overlaps an existing network.
func (c *Cluster) createNetwork() error {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("redisdocker: random name: %w", err)
	}
	c.name = "quorumlock-" + hex.EncodeToString(b[:])
	var lastErr error
	for range netAttempts {
		x, err := rand.Int(rand.Reader, big.NewInt(256))
		if err != nil {
			return fmt.Errorf("redisdocker: random subnet: %w", err)
		}
		prefix := "10.213." + x.String() + "."
		nw, err := c.client.CreateNetwork(docker.CreateNetworkOptions{
			Name:           c.name,
			Driver:         "bridge",
			CheckDuplicate: true,
			Labels:         labels(c.name),
			IPAM: &docker.IPAMOptions{
				Driver: "default",
				Config: []docker.IPAMConfig{{Subnet: prefix + "0/24", Gateway: prefix + "1"}},
			},
		})
		if err == nil {
			c.netID, c.subnet = nw.ID, prefix
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlaps") {
			break
		}
	}
	return fmt.Errorf("redisdocker: create network %s: %w", c.name, lastErr)
}
