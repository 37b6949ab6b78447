// Package redisdocker runs independent Redis masters in Docker containers for
// tests that need real network faults: a node can be killed (SIGKILL, its
// data kept), started again at the same address, paused (frozen: the socket
// stays but nothing answers) and cut off from the network (a partition).
//
// Each [Cluster] gets its own bridge network with a subnet picked at random
// from 10.213.0.0/16 and each node a fixed IP address in it, so a node keeps
// its "IP:6379" address across Kill/Start and Disconnect/Reconnect. Clients
// reach the nodes at those container addresses, which works from the host on
// Linux (not with Docker Desktop, whose containers live in a VM). Redis runs
// with an append-only file fsynced on every write and no eviction (ALGORITHM
// N2, N3), the settings of the reference deployment in docker-compose.yml.
//
// Tests call [New], which skips the test when no Docker daemon is reachable
// (or fails it when CI=true) and closes the cluster in t.Cleanup. Other
// programs call [Start] and must call [Cluster.Close], which force-removes
// the containers with their volumes and the network.
//
// Every container and network is labelled with the creating process's pid
// and host name; [Start] first removes what a crashed earlier run left
// behind (the labels of a process on this host that no longer exists).
//
// The image is $REDIS_IMAGE, else redis:7 if present or pullable, else
// quorumlock/redis:7-local, built once from the host's redis-server by
// testdata/docker/build-image.sh (see [Image]).
package redisdocker
