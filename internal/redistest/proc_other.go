//go:build unix && !linux

package redistest

import "syscall"

// sysProcAttr puts the server in its own process group, so a terminal Ctrl-C
// does not reach it. Pdeathsig is Linux-only.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
