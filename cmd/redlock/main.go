// Command redlock runs a command while holding a Redlock lock taken on N
// independent Redis masters, shows who holds a lock on those nodes, checks
// that the nodes keep the deployment rules, and breaks a stuck lock.
//
//	redlock run [flags] NAME -- COMMAND [ARGS...]
//	redlock status [flags] NAME
//	redlock check [flags]
//	redlock unlock --force [--yes] [flags] NAME
//	redlock leader [flags] NAME
//	redlock demo [flags]
//	redlock version
//
// Run `redlock help` for the flags and the exit codes, `redlock COMMAND
// --help` for one command's.
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Exit codes. They are the contract with scripts and schedulers: keep them
// in step with the EXIT CODES tables of the help (help.go).
const (
	exitOK          = 0
	exitNotAcquired = 1
	exitNothingHeld = 1 // unlock --force: no node held the lock
	exitUsage       = 2
	exitLost        = 3
	exitError       = 4
	exitCannotExec  = 126 // as POSIX shells, env and timeout
	exitNotFound    = 127
)

func main() { os.Exit(dispatch(os.Args[1:])) }

// dispatch runs the command named by args[0] and returns the exit code.
func dispatch(args []string) int {
	if len(args) == 0 {
		return usageErr("", "missing command: %s, help or version", commandNames())
	}
	switch args[0] {
	case "run":
		return runRun(args[1:])
	case "status":
		return runStatus(args[1:])
	case "check":
		return runCheck(args[1:])
	case "unlock":
		return runUnlock(args[1:])
	case "leader":
		return runLeader(args[1:])
	case "demo":
		return runDemo(args[1:])
	case "help", "-h", "-help", "--help":
		switch {
		case len(args) == 1:
			fmt.Print(help())
			return exitOK
		case len(args) == 2 && slices.ContainsFunc(commands, func(c subcommand) bool { return c.name == args[1] }):
			printCommandHelp(args[1])
			return exitOK
		case len(args) == 2:
			return usageErr("", "unknown command %q: want %s", args[1], commandNames())
		}
		return usageErr("", "unexpected argument %q after %s %s", args[2], args[0], args[1])
	case "version", "-version", "--version":
		if len(args) > 1 {
			return usageErr("", "unexpected argument %q after %s", args[1], args[0])
		}
		fmt.Println(versionLine(buildInfo()))
		return exitOK
	}
	return usageErr("", "unknown command %q: want %s, help or version", args[0], commandNames())
}

// commandNames lists the commands for messages: "run, status, ... or demo".
func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// usageErr prints one line naming the bad input and returns exitUsage. One
// line, not a usage dump: the bad value stays visible in a scheduler's log.
func usageErr(cmd, format string, a ...any) int {
	prefix := "redlock"
	if cmd != "" {
		prefix += " " + cmd
	}
	see := "redlock help"
	if cmd != "" {
		see = "redlock " + cmd + " --help"
	}
	fmt.Fprintf(os.Stderr, "%s: %s (see '%s')\n", prefix, oneLine(fmt.Sprintf(format, a...)), see)
	return exitUsage
}

// errorf prints one line on stderr.
func errorf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "redlock: %s\n", oneLine(fmt.Sprintf(format, a...)))
}

// oneLine keeps a message (node errors can hold newlines) on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// libMsg returns a library error's text without its "redlock: " prefix, which
// our own prefix already says.
func libMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "redlock: ")
}
