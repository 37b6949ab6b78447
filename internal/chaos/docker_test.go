//go:build docker

package chaos

import (
	"testing"
	"time"

	"github.com/quorumlock/quorumlock/internal/redisdocker"
)

// In the model, on five containers, each its own host: kill with delayed
// restart, kill with immediate restart (AOF, appendfsync always), docker
// pause, network partition (docker network disconnect) and added latency
// (through a proxy), never more than two nodes at once.
func TestChaosDockerTier(t *testing.T) {
	c := redisdocker.New(t, 5)
	var ns []Node
	for _, n := range c.Nodes() {
		ns = append(ns, n)
	}
	s, err := Run(t.Context(), Config{
		Tier: "containers", Nodes: ns, Proxies: true, InModel: true,
		Kinds:    []string{Kill, Restart, Pause, Partition, Latency},
		Duration: duration(t, 20*time.Second), Seed: seed(t),
		// Starting a container saturates this 2-core machine for a moment
		// (dockerd, fuse-overlayfs): every process, the healthy nodes and
		// this client included, stalls. Deadlines of 30ms then fail on
		// healthy nodes too, which is starvation, not the lock; give the
		// container tier a TTL and node timeout that fit it.
		TTL: time.Second, NodeTimeout: 100 * time.Millisecond, Every: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	report(t, s, true)
}
