//go:build !linux

package main

import "syscall"

// childAttr puts the command in a process group of its own, so that
// redlock can signal all of it and a terminal's Ctrl-C reaches redlock
// (which forwards it). Pdeathsig exists on Linux only.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
