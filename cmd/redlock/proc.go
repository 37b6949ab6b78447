package main

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quorumlock/quorumlock/redlock"
)

// Environment variables the command sees.
const (
	envName  = "REDLOCK_NAME"
	envToken = "REDLOCK_TOKEN"
)

// childEnv returns the parent's environment with REDLOCK_NAME, and
// REDLOCK_TOKEN with fencing. An inherited REDLOCK_TOKEN (redlock run inside
// redlock run) is dropped: the command must never present another lock's
// token to the resource (F5).
func childEnv(parent []string, name string, token uint64, fencing bool) []string {
	env := slices.DeleteFunc(slices.Clone(parent), func(kv string) bool {
		return strings.HasPrefix(kv, envName+"=") || strings.HasPrefix(kv, envToken+"=")
	})
	env = append(env, envName+"="+name)
	if fencing {
		env = append(env, envToken+"="+strconv.FormatUint(token, 10))
	}
	return env
}

// supervise waits for the command to exit, forwarding signals to its
// process group, and stops the group when the lock is lost (ALGORITHM.md
// H2: the holder must stop acting once Done closes). It returns the
// command's exit status, or exitLost.
func supervise(cmd *exec.Cmd, l *redlock.Lock, sigc <-chan os.Signal, grace time.Duration) int {
	pgid := cmd.Process.Pid // Setpgid: the leader's pid names the group
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	for {
		select {
		case <-exited:
			return exitStatus(cmd.ProcessState)
		case s := <-sigc:
			syscall.Kill(-pgid, s.(syscall.Signal))
		case <-l.Done():
			select {
			case <-exited:
				// Both happened at once: the command had finished
				// its work, so its own status stands.
				return exitStatus(cmd.ProcessState)
			default:
			}
			errorf("lock %q lost: %s; stopping the command", l.Name(), lostReason(l.Err()))
			stopGroup(pgid, grace, exited)
			return exitLost
		}
	}
}

// stopGroup sends SIGTERM to the process group, and SIGKILL once the leader
// has exited or grace has passed, then waits for the leader.
func stopGroup(pgid int, grace time.Duration, exited <-chan struct{}) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
	}
	// Whatever is left of the group gets SIGKILL, even when the leader
	// exited in time: a child it left behind would act without the lock
	// (H2). A group that is gone already makes this a no-op (ESRCH).
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

// exitStatus maps how the command ended to redlock's exit code, as a shell
// does: its exit status, or 128+N when signal N killed it.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return exitError
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// lostReason is the cause of a lost lock without the sentinel's prefix,
// which the message already says.
func lostReason(err error) string {
	if err == nil {
		return "unknown cause"
	}
	return strings.TrimPrefix(err.Error(), redlock.ErrLockLost.Error()+": ")
}
