package main

import "syscall"

// childAttr puts the command in a process group of its own, so that
// redlock can signal all of it and a terminal's Ctrl-C reaches redlock
// (which forwards it) rather than racing past it. Pdeathsig sends SIGTERM to
// the command if redlock itself dies (SIGKILL, a crash): the lock would then
// expire unextended, and the command must not go on without it (H2).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
