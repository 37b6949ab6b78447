package redlock

import (
	"context"
	"time"
)

// Observer is told of every noteworthy event of a Client: the one seam for
// metrics, traces and logs (WithObserver; SlogObserver logs them, the
// module github.com/quorumlock/quorumlock/otel turns them into OpenTelemetry
// metrics and spans).
//
// Observe is called synchronously, on the goroutine where the event
// happened (a caller's, or the client's background work: auto-extension,
// undoing failed attempts, connection upkeep, a lock's deadline timer),
// after the event's outcome is decided, which it never changes. The event
// of a call (EventAttempt, EventLock, EventExtend, EventRelease) is told
// before the call returns; a node's failure when its request fails, which
// may be after the call returned at the quorum (ALGORITHM.md A6); a loss
// when the library finds it, with no lock mutex held. Observe must be safe
// for concurrent use, return quickly, and never call back into the Client.
// An Event never holds a lock's secret value or a password (O2).
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event.
const (
	// EventAttempt: one acquisition attempt decided, TryLock's or one of
	// Lock's (InLock set). Latency is its round on the nodes.
	EventAttempt EventKind = iota + 1
	// EventLock: a Lock call ended, with the lock (OutcomeOK) or without.
	// Latency is the whole call: the wait. Attempts counts its attempts
	// (its EventAttempt events, the attempts to keep its place in line
	// included).
	EventLock
	// EventExtend: an Extend decided, the caller's or auto-extension's
	// (Auto set). Latency is its round on the nodes.
	EventExtend
	// EventRelease: an Unlock decided (the release after Do's function
	// included). Latency is its round on the nodes.
	EventRelease
	// EventLost: a held lock was lost before its holder released it; Err
	// wraps ErrLockLost and says why (Cause).
	EventLost
	// EventNodeFailure: one request to one node failed (Node, Failure,
	// Err), once per request: a call's (also found in the call's own
	// error), or a background one (the undo of a failed attempt, a waiter
	// leaving the line, the release after auto-extension gave up). The
	// reads that answer operators' questions (Holder, ForceUnlock, Check,
	// Election.Leader and Observe) report theirs in their errors only.
	EventNodeFailure
	// EventReconnect: a node's connection was closed and is being replaced
	// (Node; Err the reason).
	EventReconnect
)

var eventKindNames = [...]string{"", "attempt", "lock", "extend", "release", "lost", "node_failure", "reconnect"}

// String returns the kind's name in snake case ("attempt", "node_failure"),
// as logs and metrics use it.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return "unknown"
}

// Outcome is how an attempt, a Lock call, an Extend or an Unlock ended.
type Outcome uint8

// The outcomes.
const (
	// OutcomeOK: granted, extended or released on a quorum in time.
	OutcomeOK Outcome = iota + 1
	// OutcomeRefused: the nodes said no: the lock is held elsewhere
	// (acquisition) or no longer holds this handle's value (Extend, Unlock).
	OutcomeRefused
	// OutcomeFailed: too many nodes failed or were silent to reach a
	// quorum either way.
	OutcomeFailed
	// OutcomeExpired: a quorum answered but the validity was used up.
	OutcomeExpired
	// OutcomeCanceled: the caller's context ended, or the client closed.
	OutcomeCanceled
)

var outcomeNames = [...]string{"", "ok", "refused", "failed", "expired", "canceled"}

// String returns the outcome's name ("ok", "refused", ...).
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return "unknown"
}

// FailureKind classifies a node failure.
type FailureKind uint8

// The kinds of node failure.
const (
	// FailureTimeout: no answer within the node timeout (ErrNodeTimeout).
	FailureTimeout FailureKind = iota + 1
	// FailureConnection: the connection could not be made or broke
	// (refused, reset, TLS or AUTH failure while setting it up).
	FailureConnection
	// FailureReply: the node answered with an error reply (READONLY, OOM,
	// NOPERM, WRONGTYPE, ...).
	FailureReply
	// FailureNoScript: the node had lost the client's scripts (NOSCRIPT,
	// after a restart or SCRIPT FLUSH); they are loaded again.
	FailureNoScript
	// FailureClosed: the client was closed with the request pending.
	FailureClosed
)

var failureKindNames = [...]string{"", "timeout", "connection", "error_reply", "noscript", "closed"}

// String returns the kind's name ("timeout", "connection", "error_reply",
// "noscript", "closed").
func (k FailureKind) String() string {
	if int(k) < len(failureKindNames) && k != 0 {
		return failureKindNames[k]
	}
	return "unknown"
}

// LostCause says why a held lock was lost (EventLost).
type LostCause uint8

// The causes of a lost lock.
const (
	// LostExpired: Until() passed with no successful extension.
	LostExpired LostCause = iota + 1
	// LostExtendFailed: auto-extension could no longer succeed before
	// Until() and gave the lock up.
	LostExtendFailed
	// LostNotHeld: the nodes said the key no longer holds this lock's value.
	LostNotHeld
	// LostMaxHold: WithMaxHold was reached and the lock ran out.
	LostMaxHold
)

var lostCauseNames = [...]string{"", "expired", "extend_failed", "not_held", "max_hold"}

// String returns the cause's name ("expired", "extend_failed", ...).
func (c LostCause) String() string {
	if int(c) < len(lostCauseNames) && c != 0 {
		return lostCauseNames[c]
	}
	return "unknown"
}

// Event is one thing that happened in a Client. Which fields are set
// depends on Kind; the others are zero.
type Event struct {
	Kind EventKind
	// Ctx is the context of the call that made the event (Background for
	// the client's own background work), so that an adapter can put a span
	// under the caller's.
	Ctx context.Context
	// Name is the lock's name ("" for EventNodeFailure, EventReconnect).
	Name string
	// Outcome: EventAttempt, EventLock, EventExtend, EventRelease.
	Outcome Outcome
	// The round's figures: EventAttempt, EventExtend, EventRelease (and
	// EventLock, its last attempt's).
	Granted, Refused, Failed, Nodes, Quorum int
	// Attempts: EventLock, the attempts made; EventAttempt, 1.
	Attempts int
	// InLock: EventAttempt made by Lock (not TryLock).
	InLock bool
	// Auto: EventExtend made by auto-extension.
	Auto bool
	// Latency: how long the round (or the Lock call) took; 0 when the call
	// sent nothing (an Extend after the deadline, a context already ended).
	Latency time.Duration
	// Token: the fencing token of the acquisition, when fencing.
	Token uint64
	// HeldDelta is +1 when the event starts holding a lock (a granted
	// attempt), -1 when it ends one (the release, or the loss, whichever
	// came first), else 0: their sum is the number of locks held.
	HeldDelta int
	// Cause: EventLost.
	Cause LostCause
	// Node and Failure: EventNodeFailure, EventReconnect (Node).
	Node    string
	Failure FailureKind
	// Err: the error the call returns (for a failed attempt, Extend or
	// Unlock, a *QuorumError listing each node's failure), the cause of a
	// node failure, a reconnection or a loss; nil on success.
	Err error
}

// WithObserver adds o to the client's observers; given more than once, each
// observer is told of every event, in the order given. It is a client
// option: New accepts it, a call given it fails with ErrInvalidOption.
// An observed client arms a timer for each lock it holds, so that a lock
// nobody watches is reported lost at its deadline (ALGORITHM.md O1).
// Default: no observer, and the seam then costs one length check per event
// and no allocation.
func WithObserver(o Observer) Option {
	return func(c *config) { c.observers = append(c.observers[:len(c.observers):len(c.observers)], o) }
}
