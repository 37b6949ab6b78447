package redisdocker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ory/dockertest/v3/docker"
)

// labels marks a container or network as the harness's, with its cluster
// and the creating process (pid and host name) for reapLeftovers.
func labels(cluster string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		labelHarness: "1",
		labelCluster: cluster,
		labelPID:     strconv.Itoa(os.Getpid()),
		labelHost:    host,
	}
}

// removeCluster removes the containers and then the network; missing ones
// are not errors.
func removeCluster(client *docker.Client, name, netID string, ids []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		err := client.RemoveContainer(docker.RemoveContainerOptions{ID: id, Force: true, RemoveVolumes: true})
		var missing *docker.NoSuchContainer
		if err != nil && !errors.As(err, &missing) && !strings.Contains(err.Error(), "already in progress") {
			errs = append(errs, fmt.Errorf("redisdocker: remove container %.12s: %w", id, err))
		}
	}
	if netID != "" {
		err := client.RemoveNetwork(netID)
		var missing *docker.NoSuchNetwork
		if err != nil && !errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("redisdocker: remove network %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// reapLeftovers removes the containers and networks of processes on this
// host that no longer exist: what a crashed or killed test run left behind.
// It is best effort; errors are ignored (another process may be reaping).
func reapLeftovers(client *docker.Client) {
	host, _ := os.Hostname()
	dead := func(l map[string]string) bool {
		pid, err := strconv.Atoi(l[labelPID])
		return err == nil && pid > 0 && l[labelHost] == host && pid != os.Getpid() && !processAlive(pid)
	}
	filter := map[string][]string{"label": {labelHarness}}
	ctrs, err := client.ListContainers(docker.ListContainersOptions{All: true, Filters: filter})
	if err != nil {
		return
	}
	byCluster := map[string][]string{}
	for _, ctr := range ctrs {
		if dead(ctr.Labels) {
			byCluster[ctr.Labels[labelCluster]] = append(byCluster[ctr.Labels[labelCluster]], ctr.ID)
		}
	}
	for name, ids := range byCluster {
		removeCluster(client, name, "", ids)
	}
	nets, err := client.FilteredListNetworks(docker.NetworkFilterOpts{"label": {labelHarness: true}})
	if err != nil {
		return
	}
	for _, nw := range nets {
		if dead(nw.Labels) {
			removeCluster(client, nw.Name, nw.ID, nil)
		}
	}
}
