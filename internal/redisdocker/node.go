package redisdocker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/ory/dockertest/v3/docker"
)

// Node is one Redis container. Its IP address is fixed, so it keeps its
// address across Kill/Start and Disconnect/Reconnect, and its data (the
// append-only file in the container's /data) across Kill/Start. All methods
// are safe for concurrent use; state changes are serialized.
type Node struct {
	c    *Cluster
	id   string // container ID
	name string // container name
	ip   string
	addr string // "IP:6379"

	ops sync.Mutex // held for a whole state change (docker call + PING wait)
}

// startNode creates and starts container i. The returned node is non-nil
// once the container exists, so Close can remove it.
func (c *Cluster) startNode(i int, image string, args []string) (*Node, error) {
	ip := c.subnet + strconv.Itoa(firstHostByte+i)
	name := c.name + "-" + strconv.Itoa(i+1)
	ctr, err := c.client.CreateContainer(docker.CreateContainerOptions{
		Name: name,
		Config: &docker.Config{
			Image:    image,
			Cmd:      args,
			Hostname: name,
			Labels:   labels(c.name),
		},
		HostConfig: &docker.HostConfig{NetworkMode: c.name},
		NetworkingConfig: &docker.NetworkingConfig{EndpointsConfig: map[string]*docker.EndpointConfig{
			c.name: {IPAMConfig: &docker.EndpointIPAMConfig{IPv4Address: ip}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("redisdocker: create container %s from %s: %w", name, image, err)
	}
	n := &Node{c: c, id: ctr.ID, name: name, ip: ip, addr: net.JoinHostPort(ip, port)}
	if err := c.client.StartContainer(n.id, nil); err != nil {
		return n, fmt.Errorf("redisdocker: start %s: %w%s", name, err, n.logTail())
	}
	return n, n.waitReady()
}

// Addr returns the node's "IP:6379" address, the same for its whole life.
func (n *Node) Addr() string { return n.addr }

// Name returns the container name.
func (n *Node) Name() string { return n.name }

// Kill sends SIGKILL (docker kill) and waits until the container has
// stopped; the container and the data in its filesystem stay. Killing a
// node that is down is a no-op; a paused node is killed too.
func (n *Node) Kill() error {
	n.ops.Lock()
	defer n.ops.Unlock()
	return n.kill()
}

func (n *Node) kill() error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	err := n.c.client.KillContainer(docker.KillContainerOptions{ID: n.id})
	var notRunning *docker.ContainerNotRunning
	if err != nil && !errors.As(err, &notRunning) {
		return fmt.Errorf("redisdocker: kill %s: %w", n.name, err)
	}
	deadline := time.Now().Add(stopTimeout)
	for {
		ctr, err := n.inspect()
		if err != nil {
			return err
		}
		if !ctr.State.Running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisdocker: %s still running %v after kill", n.name, stopTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Start starts a killed node again at the same address and, if it is
// connected, waits until it answers PING (a disconnected node cannot be
// reached; Reconnect waits instead). Starting a running node only waits for
// PING; a paused node is an error (use Resume).
func (n *Node) Start() error {
	n.ops.Lock()
	defer n.ops.Unlock()
	return n.start()
}

func (n *Node) start() error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	ctr, err := n.inspect()
	if err != nil {
		return err
	}
	if ctr.State.Paused {
		return fmt.Errorf("redisdocker: start %s: node is paused (use Resume)", n.name)
	}
	if !ctr.State.Running {
		err := n.c.client.StartContainer(n.id, nil)
		var running *docker.ContainerAlreadyRunning
		if err != nil && !errors.As(err, &running) {
			return fmt.Errorf("redisdocker: start %s: %w%s", n.name, err, n.logTail())
		}
	}
	if !n.connected(ctr) {
		return nil
	}
	return n.waitReady()
}

// Restart kills the node and starts it again; with appendfsync always every
// acknowledged write survives.
func (n *Node) Restart() error {
	n.ops.Lock()
	defer n.ops.Unlock()
	if err := n.kill(); err != nil {
		return err
	}
	return n.start()
}

// Pause freezes the container (docker pause): connections are accepted by
// the kernel but nothing answers, like a stalled server. Pausing a paused
// node is a no-op; a stopped node is an error.
func (n *Node) Pause() error { return n.setPaused(true) }

// Resume unfreezes a paused container (docker unpause). Resuming a node
// that is not paused is a no-op.
func (n *Node) Resume() error { return n.setPaused(false) }

func (n *Node) setPaused(pause bool) error {
	n.ops.Lock()
	defer n.ops.Unlock()
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	if err := n.checkOpen(); err != nil {
		return err
	}
	ctr, err := n.inspect()
	if err != nil {
		return err
	}
	if !ctr.State.Running {
		return fmt.Errorf("redisdocker: %s %s: node is not running", verb, n.name)
	}
	if ctr.State.Paused == pause {
		return nil
	}
	if pause {
		err = n.c.client.PauseContainer(n.id)
	} else {
		err = n.c.client.UnpauseContainer(n.id)
	}
	if err != nil {
		return fmt.Errorf("redisdocker: %s %s: %w", verb, n.name, err)
	}
	return n.settle(pause)
}

// Disconnect removes the container from the cluster network (docker
// network disconnect): a partition, clients can no longer reach it. The
// server keeps running. Disconnecting a disconnected node is a no-op.
func (n *Node) Disconnect() error {
	n.ops.Lock()
	defer n.ops.Unlock()
	if err := n.checkOpen(); err != nil {
		return err
	}
	ctr, err := n.inspect()
	if err != nil {
		return err
	}
	if !n.connected(ctr) {
		return nil
	}
	err = n.c.client.DisconnectNetwork(n.c.netID, docker.NetworkConnectionOptions{Container: n.id, Force: true})
	if err != nil {
		return fmt.Errorf("redisdocker: disconnect %s: %w", n.name, err)
	}
	return nil
}

// Reconnect attaches the container to the cluster network again with the
// same IP address and, if it is running and not paused, waits for PING.
// Reconnecting a connected node is a no-op.
func (n *Node) Reconnect() error {
	n.ops.Lock()
	defer n.ops.Unlock()
	if err := n.checkOpen(); err != nil {
		return err
	}
	ctr, err := n.inspect()
	if err != nil {
		return err
	}
	if n.connected(ctr) {
		return nil
	}
	err = n.c.client.ConnectNetwork(n.c.netID, docker.NetworkConnectionOptions{
		Container: n.id,
		EndpointConfig: &docker.EndpointConfig{
			IPAMConfig: &docker.EndpointIPAMConfig{IPv4Address: n.ip},
		},
	})
	if err != nil {
		return fmt.Errorf("redisdocker: reconnect %s: %w", n.name, err)
	}
	if !ctr.State.Running || ctr.State.Paused {
		return nil
	}
	return n.waitReady()
}

// Running reports whether the container is running (a paused one counts).
func (n *Node) Running() bool {
	ctr, err := n.inspect()
	return err == nil && ctr.State.Running
}

// Paused reports whether the container is running but frozen by Pause.
func (n *Node) Paused() bool {
	ctr, err := n.inspect()
	return err == nil && ctr.State.Running && ctr.State.Paused
}

// Connected reports whether the container is attached to the cluster
// network, i.e. not cut off by Disconnect.
func (n *Node) Connected() bool {
	ctr, err := n.inspect()
	return err == nil && n.connected(ctr)
}

// Do sends one command on a fresh connection with 2s timeouts, so it works
// (or fails fast) whatever state the node is in. Replies are as in redigo:
// string, int64, []byte, nil, []any; an error reply is returned as an error.
func (n *Node) Do(cmd string, args ...any) (any, error) {
	return n.do(doTimeout, cmd, args...)
}

// do takes no lock: a paused node must not block Resume for the timeout.
func (n *Node) do(timeout time.Duration, cmd string, args ...any) (any, error) {
	conn, err := redis.Dial("tcp", n.addr,
		redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout),
		redis.DialWriteTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("redisdocker: dial %s (%s): %w", n.addr, n.name, err)
	}
	defer conn.Close()
	reply, err := conn.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("redisdocker: %s on %s (%s): %w", cmd, n.addr, n.name, err)
	}
	return reply, nil
}

func (n *Node) checkOpen() error {
	if n.c.isClosed() {
		return fmt.Errorf("redisdocker: %s: cluster is closed", n.name)
	}
	return nil
}

func (n *Node) inspect() (*docker.Container, error) {
	ctr, err := n.c.client.InspectContainer(n.id)
	if err != nil {
		return nil, fmt.Errorf("redisdocker: inspect %s: %w", n.name, err)
	}
	return ctr, nil
}

func (n *Node) connected(ctr *docker.Container) bool {
	if ctr.NetworkSettings == nil {
		return false
	}
	_, ok := ctr.NetworkSettings.Networks[n.c.name]
	return ok
}
