//go:build unix

package redisdocker

import (
	"errors"
	"syscall"
)

// processAlive reports whether pid names a live process on this host. A
// process owned by another user (EPERM) counts as alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
