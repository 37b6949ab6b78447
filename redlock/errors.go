package redlock

import (
	"errors"
	"fmt"
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
}

func newQuorumError(op, name string, t quorum.Tally, sentinel, ctxErr error, nodes *multierror.Error) *QuorumError {
	return &QuorumError{
		Op: op, Name: name, Attempts: 1,
		N: t.N, Quorum: t.Q, Granted: t.Granted, Refused: t.Refused, Failed: t.Failed,
		Nodes: nodes, sentinel: sentinel, ctxErr: ctxErr,
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
	var b strings.Builder
	what := map[string]string{"lock": "not acquired", "extend": "not extended", "unlock": "not released"}[e.Op]
	fmt.Fprintf(&b, "redlock: lock %q %s", e.Name, what)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	fmt.Fprintf(&b, ": %s (%d granted, %d refused, %d failed", e.Reason(), e.Granted, e.Refused, e.Failed)
	if p := e.N - e.Granted - e.Refused - e.Failed; p > 0 {
		fmt.Fprintf(&b, ", %d no answer", p)
	}
	fmt.Fprintf(&b, " of %d nodes, need %d)", e.N, e.Quorum)
	if e.Nodes != nil && len(e.Nodes.Errors) > 0 {
		b.WriteString(": ")
		for i, ne := range e.Nodes.Errors {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(ne.Error())
		}
	}
	return b.String()
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
