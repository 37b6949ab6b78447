package redistest

import "syscall"

// sysProcAttr puts the server in its own process group, so a terminal Ctrl-C
// does not reach it, and asks the kernel to kill it if the parent dies, so a
// crashed test binary does not leave servers behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
