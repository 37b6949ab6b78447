package redisdocker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ory/dockertest/v3/docker"
)

// settle waits until the daemon has reported the wanted paused state for
// settleFor in a row. Docker 20.10 sets the state on the API call and again
// when containerd's event arrives, and a late "paused" event can flip a
// just-resumed container back to paused for some tens of milliseconds
// (under load), making the next pause fail with "already paused".
func (n *Node) settle(paused bool) error {
	deadline := time.Now().Add(stopTimeout)
	var stableSince time.Time
	for {
		ctr, err := n.inspect()
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case ctr.State.Paused != paused:
			stableSince = time.Time{}
		case stableSince.IsZero():
			stableSince = now
		case now.Sub(stableSince) >= settleFor:
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("redisdocker: %s: paused state did not settle to %v within %v", n.name, paused, stopTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReady polls PING until it answers, the container exits or the
// deadline passes; errors carry the tail of the container's log.
func (n *Node) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	nextInspect := time.Now()
	for {
		reply, err := n.do(200*time.Millisecond, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redisdocker: %s at %s did not answer PING within %v: %v%s",
				n.name, n.addr, readyTimeout, err, n.logTail())
		}
		if time.Now().After(nextInspect) {
			nextInspect = time.Now().Add(250 * time.Millisecond)
			if ctr, ierr := n.inspect(); ierr != nil {
				return ierr
			} else if !ctr.State.Running {
				return fmt.Errorf("redisdocker: %s exited during startup (exit code %d)%s",
					n.name, ctr.State.ExitCode, n.logTail())
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logTail returns the last lines of the container's output for errors.
func (n *Node) logTail() string {
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := n.c.client.Logs(docker.LogsOptions{
		Context:      ctx,
		Container:    n.id,
		OutputStream: &buf,
		ErrorStream:  &buf,
		Stdout:       true,
		Stderr:       true,
		Tail:         "20",
	})
	out := strings.TrimSpace(buf.String())
	if err != nil {
		out = strings.TrimSpace(out + "\n(logs: " + err.Error() + ")")
	}
	if out == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of docker logs %s ---\n%s", n.name, out)
}
