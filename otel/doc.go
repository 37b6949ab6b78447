// Package redlockotel turns the events of a redlock.Client into
// OpenTelemetry metrics and spans, through the client's observer seam:
//
//	obs, err := redlockotel.New() // the global providers, or WithMeterProvider, WithTracerProvider
//	client, err := redlock.New(pools, redlock.WithObserver(obs))
//
// It is a module of its own (github.com/quorumlock/quorumlock/otel) so that
// the core module does not bring OpenTelemetry into every build. In this
// repository its go.mod replaces the core module with ../; a released
// version drops the replace and requires a released core.
//
// # Metrics
//
// Durations are histograms in seconds; a counter per operation counts the
// outcomes again, on the same attributes, for dashboards and alerts.
//
//	redlock.acquire.duration  histogram, s   one per acquisition attempt: redlock.outcome, redlock.call ("try_lock" or "lock")
//	redlock.wait.duration     histogram, s   one per Lock call, the whole wait: redlock.outcome
//	redlock.extend.duration   histogram, s   one per Extend round: redlock.outcome, redlock.extend.auto
//	redlock.release.duration  histogram, s   one per Unlock round: redlock.outcome
//	redlock.acquire.attempts  counter   attempts by outcome: as redlock.acquire.duration
//	redlock.lock.calls        counter   Lock calls by outcome: as redlock.wait.duration
//	redlock.extend.calls      counter   extensions by outcome: as redlock.extend.duration
//	redlock.release.calls     counter   Unlock calls by outcome: as redlock.release.duration
//	redlock.locks.held        up-down counter   locks granted and not yet released or lost
//	redlock.locks.lost        counter   locks lost before their release: redlock.lost.cause
//	redlock.node.failures     counter   failed requests: redlock.node (its address), error.type (the failure kind)
//	redlock.node.reconnects   counter   connections replaced: redlock.node
//
// The outcomes are "ok", "refused", "failed", "expired" and "canceled"; the
// lost causes "expired", "extend_failed", "not_held" and "max_hold"; the
// failure kinds "timeout", "connection", "error_reply", "noscript" and
// "closed" (redlock.Outcome, LostCause and FailureKind).
//
// The lock's name is not a metric attribute unless WithLockNameAttribute:
// names made from ids would make time series without bound. Every data
// point records from an attribute set made once, without allocating.
//
// # Spans
//
// An event arrives when its call ends, with the caller's context and the
// call's latency: its span starts Latency before now, under the caller's
// span, and ends now. The spans are redlock.TryLock, redlock.Lock (the
// whole call, waiting included), redlock.Lock.attempt (each of a Lock
// call's attempts: they end before the call's span can be made, so they
// sit beside it under the same parent, not inside it), redlock.Extend
// (auto-extension's are roots: its context is the client's own) and
// redlock.Unlock. Their attributes: redlock.lock.name, redlock.outcome,
// redlock.nodes.granted, .refused, .failed, redlock.nodes, redlock.quorum,
// redlock.attempts (Lock), redlock.extend.auto (Extend) and
// redlock.fencing.token (when fencing). A round that failed on some nodes
// carries one redlock.node.failure event per node (redlock.node,
// error.type, error.message); its status is Error with the error's message
// for every outcome but ok, except an attempt refused because another
// holder has the lock, the answer a TryLock exists to give. The library's
// errors never hold a lock's value or a password.
//
// A lost lock, a node failure and a reconnection are counted, not traced:
// they happen in the client's background work, under no caller's span, and
// a node's failure in a round shows on the round's span already.
package redlockotel
