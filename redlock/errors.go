package redlock

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

var (
	// ErrNotAcquired is returned by Lock and TryLock when no quorum granted
	// the lock in time: it is held by someone else, too many nodes failed,
	// the validity was used up, or the caller's context ended. The error is
	// a *QuorumError that says which.
	ErrNotAcquired = errors.New("redlock: lock not acquired")

	// ErrNotHeld is returned by Unlock and Extend when this handle no
	// longer holds the lock: it expired, was released, or the nodes say the
	// key holds another value or none (ALGORITHM.md R3, R4, E1).
	ErrNotHeld = errors.New("redlock: lock not held")

	// ErrLockLost is returned (by Lock.Err, and by Do) when a held lock was
	// lost: it reached its deadline without an extension, auto-extension
	// gave up, the max hold was reached, or the nodes no longer hold it.
	// The holder must stop acting on the protected resource.
	ErrLockLost = errors.New("redlock: lock lost")

	// ErrUnsafeDeployment is returned, inside a *NodeError per node, by
	// Check when a node breaks a deployment rule of ALGORITHM.md (N1-N3).
	ErrUnsafeDeployment = errors.New("redlock: unsafe deployment")

	// ErrDegraded is returned, inside a *NodeError per node, by Check when
	// a node keeps the lock safe but slower than it should: its ACL user
	// may not publish or subscribe on the release channels
	// (redlock:{NAME}:released), so waiters poll instead of being woken.
	ErrDegraded = errors.New("redlock: degraded deployment")

	// ErrClosed is returned, inside a *NodeError per node, by calls made
	// after Client.Close.
	ErrClosed = pipe.ErrClosed

	// ErrNodeTimeout is returned, inside a *NodeError, when a node did not
	// answer within the node timeout (WithNodeTimeout). It is distinct from
	// context.DeadlineExceeded, which means the caller's own context ended.
	ErrNodeTimeout = errors.New("redlock: node timeout")

	// ErrInvalidOption is returned by New, and by calls given options, when
	// an option or argument is out of range; the message names the value.
	ErrInvalidOption = errors.New("redlock: invalid option")
)

// NodeError is one node's failure: an error or a timeout talking to the
// node at Addr. Per ALGORITHM.md A4 it means "not granted, but maybe applied".
type NodeError struct {
	Addr string // the node's address, as its pool reports it
	Err  error  // the cause: a Redis error reply, a network error, ErrNodeTimeout
}

func (e *NodeError) Error() string { return "node " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// QuorumError is returned when a round on the nodes did not reach a quorum:
// Lock and TryLock (wrapping ErrNotAcquired), Extend and Unlock (wrapping
// ErrNotHeld when the nodes said the key is not ours). It keeps the counts,
// the per-node failures (errors.As(err, &nodeErr) finds them) and, when the
// caller's context ended the call, the context's error, so
// errors.Is(err, context.Canceled) holds too.
type QuorumError struct {
	Op       string // "lock", "extend" or "unlock"
	Name     string // the lock's name
	Attempts int    // attempts made (Lock retries; 1 otherwise)

	N, Quorum                int // configured nodes and grants needed
	Granted, Refused, Failed int // answers of the last attempt

	// Expired is true when a quorum granted but the validity was used up
	// by then (ALGORITHM.md A7, E3).
	Expired bool

	// Fencing is true when a quorum granted the lock but the fencing
	// write-back could not reach a quorum (ALGORITHM.md F3).
	Fencing bool

	// Nodes holds the *NodeError of each node that failed in the last
	// attempt, or is nil.
	Nodes *multierror.Error

	sentinel error // ErrNotAcquired, ErrNotHeld or nil
	ctxErr   error // the caller's context error, or nil
	closed   bool  // the client was closed: the nodes failed with ErrClosed
}

func newQuorumError(op, name string, t quorum.Tally, sentinel, ctxErr error, nodes *multierror.Error) *QuorumError {
	return &QuorumError{
		Op: op, Name: name, Attempts: 1,
		N: t.N, Quorum: t.Q, Granted: t.Granted, Refused: t.Refused, Failed: t.Failed,
		Nodes: nodes, sentinel: sentinel, ctxErr: ctxErr,
		closed: nodes != nil && errors.Is(nodes, ErrClosed),
	}
}

// after returns the error to report for this attempt, following prev: an
// attempt that the caller's context cut short before any node answered
// says nothing about the lock, so prev's counts stand, with the context's
// error.
func (e *QuorumError) after(prev *QuorumError) *QuorumError {
	if prev == nil || e.ctxErr == nil || e.Granted+e.Refused+e.Failed > 0 {
		return e
	}
	merged := *prev
	merged.ctxErr = e.ctxErr
	return &merged
}

// Reason says in a few words why the round failed.
func (e *QuorumError) Reason() string {
	switch {
	case e.closed:
		return "client closed"
	case e.ctxErr != nil:
		return "context ended: " + e.ctxErr.Error()
	case e.Expired:
		return "validity used up before the quorum answered"
	case e.Fencing:
		return "fencing token not confirmed by a quorum"
	case e.Failed >= e.N-e.Quorum+1:
		return "too many nodes failing"
	case e.Refused > 0 && e.Failed == 0 && e.Op == "lock":
		return "held by another holder"
	case e.Refused > 0 && e.Failed == 0:
		return "the nodes hold another value or none"
	case e.Refused > 0:
		return "held elsewhere and nodes failing"
	}
	return "no quorum"
}

func (e *QuorumError) Error() string {
	return "redlock: lock " + quoteName(e.Name) + " " + e.detail()
}

// detail is the message after the lock's name: "not extended: ...".
func (e *QuorumError) detail() string {
	var b strings.Builder
	b.WriteString(opFailed[e.Op])
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	fmt.Fprintf(&b, ": %s", e.Reason())
	if e.closed {
		return b.String() // every node says the same: the client is closed
	}
	fmt.Fprintf(&b, " (%d granted, %d refused, %d failed", e.Granted, e.Refused, e.Failed)
	if p := e.N - e.Granted - e.Refused - e.Failed; p > 0 {
		// Pending when the outcome was known: the call returned without
		// waiting for them (A6), which says nothing about their health.
		fmt.Fprintf(&b, ", %d not awaited", p)
	}
	fmt.Fprintf(&b, " of %d nodes, need %d)", e.N, e.Quorum)
	if e.Nodes != nil && len(e.Nodes.Errors) > 0 {
		b.WriteString(": ")
		b.WriteString(nodeErrorFormat(e.Nodes.Errors))
	}
	return b.String()
}

var opFailed = map[string]string{"lock": "not acquired", "extend": "not extended", "unlock": "not released"}

// LockLostError is why a held lock was lost: Lock.Err returns it, and Do
// joins it to fn's error. It wraps ErrLockLost, and the failure behind the
// loss when there is one (an Extend's *QuorumError).
type LockLostError struct {
	Name   string // the lock's name
	Reason string // what happened, as "reached its deadline without an extension"
	Err    error  // the failure that caused the loss, or nil

	kind LostCause // for EventLost
}

func (e *LockLostError) Error() string {
	return "redlock: lock " + quoteName(e.Name) + " lost: " + e.detail()
}

// detail is the reason and its cause, without naming the lock again.
func (e *LockLostError) detail() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + detailOf(e.Err, e.Name)
}

// Unwrap returns ErrLockLost and the cause, if any.
func (e *LockLostError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLockLost}
	}
	return []error{ErrLockLost, e.Err}
}

// notHeldError is an error wrapping ErrNotHeld (and a cause, such as the
// loss before an Unlock) with a message that names the lock once.
type notHeldError struct {
	name, op, reason string // op as QuorumError.Op
	cause            error
}

func (e *notHeldError) Error() string {
	msg := "redlock: lock " + quoteName(e.name) + " " + opFailed[e.op] + ": " + e.reason
	if e.cause != nil {
		msg += ": " + detailOf(e.cause, e.name)
	}
	return msg
}

func (e *notHeldError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrNotHeld}
	}
	return []error{ErrNotHeld, e.cause}
}

// detailOf returns err's message without the lock's name when err is one
// of ours about the same lock, so that the name is said once.
func detailOf(err error, name string) string {
	switch e := err.(type) {
	case *QuorumError:
		if e.Name == name {
			return e.detail()
		}
	case *LockLostError:
		if e.Name == name {
			return e.detail()
		}
	}
	return err.Error()
}

// quoteName quotes a lock name for a message, shortened when long (names
// go up to MaxNameLen bytes).
func quoteName(name string) string {
	const keep = 48
	if len(name) <= 2*keep {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%q... (%d bytes)", name[:keep], len(name))
}

// nodeErrorFormat prints per-node failures on one line, "node a: ...; node
// b: ...": the compact format of every *multierror.Error of this package
// (go-multierror's default spreads them over lines).
func nodeErrorFormat(errs []error) string {
	parts := make([]string, len(errs))
	for i, err := range errs {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

// appendNodeErrors adds errs to all (flattening), in the compact format.
func appendNodeErrors(all *multierror.Error, errs ...error) *multierror.Error {
	all = multierror.Append(all, errs...)
	all.ErrorFormat = nodeErrorFormat
	return all
}

// Unwrap returns the sentinel (ErrNotAcquired or ErrNotHeld), the caller's
// context error and the per-node errors, so that errors.Is and errors.As see
// each of them.
func (e *QuorumError) Unwrap() []error {
	errs := make([]error, 0, 3)
	for _, err := range []error{e.sentinel, e.ctxErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if e.Nodes != nil {
		errs = append(errs, e.Nodes)
	}
	return errs
}

// ErrNoLeader is returned by Election.Leader when no leadership is reported
// by a quorum of the nodes (ALGORITHM.md V4): nobody leads, a hand-over is
// in progress, too many nodes failed to tell, or the quorum reported a term
// older than one this Election already returned (V5). The error is a
// *NoLeaderError that says which.
var ErrNoLeader = errors.New("redlock: no leader")

// NoLeaderError is why Election.Leader reports no leader. It wraps
// ErrNoLeader, the per-node failures (each a *NodeError with the node's
// address) and, when the caller's context ended the call, the context's
// error, so errors.Is(err, context.Canceled) holds too.
type NoLeaderError struct {
	Election  string // the election's name
	N, Quorum int    // configured nodes and agreeing answers needed

	// Agreeing is how many nodes reported the leadership most of them
	// reported (0 when none reported any); Empty how many reported that
	// nobody leads there; Failed how many failed or were silent.
	Agreeing, Empty, Failed int

	// Older is set when a quorum reported this term, older than one this
	// Election already returned (V5): an answer that would go back in time
	// is not given.
	Older uint64

	// Nodes holds the *NodeError of each node that failed, or is nil.
	Nodes *multierror.Error

	ctxErr error
}

func (e *NoLeaderError) Error() string {
	var b strings.Builder
	b.WriteString("redlock: election " + quoteName(e.Election) + " has no leader: ")
	switch {
	case e.ctxErr != nil:
		b.WriteString("context ended: " + e.ctxErr.Error())
	case e.Older > 0:
		fmt.Fprintf(&b, "a quorum reports term %d, older than a term already reported", e.Older)
	case e.Failed >= e.N-e.Quorum+1:
		b.WriteString("too many nodes failing")
	case e.Empty >= e.Quorum:
		b.WriteString("nobody leads")
	default:
		b.WriteString("no leadership held by a quorum")
	}
	fmt.Fprintf(&b, " (%d agreeing, %d empty, %d failed of %d nodes, need %d)", e.Agreeing, e.Empty, e.Failed, e.N, e.Quorum)
	if e.Nodes != nil && len(e.Nodes.Errors) > 0 {
		b.WriteString(": ")
		b.WriteString(nodeErrorFormat(e.Nodes.Errors))
	}
	return b.String()
}

// Unwrap returns ErrNoLeader, the caller's context error and the per-node
// errors.
func (e *NoLeaderError) Unwrap() []error {
	errs := []error{ErrNoLeader}
	if e.ctxErr != nil {
		errs = append(errs, e.ctxErr)
	}
	if e.Nodes != nil {
		errs = append(errs, e.Nodes)
	}
	return errs
}
