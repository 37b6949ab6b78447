package redlock

import (
	"context"
	"log/slog"
)

// SlogObserver returns an Observer that logs every event to l, with the
// event's kind as the message ("redlock: attempt", "redlock: node_failure")
// and its fields as attributes: name, outcome, granted, refused, failed,
// attempts, latency, token, node, kind, cause, err; only those the kind
// sets. What goes wrong is logged at Warn: a node failure, a lost lock, a
// connection replaced, a release that failed; everything else (attempts,
// Lock waits, extensions, releases) at Debug. A record is built only when
// l is enabled at its level, so at Info the Debug events cost a call to
// Enabled. Nothing logged holds a lock's value or a password (ALGORITHM.md
// O2): events never carry them.
func SlogObserver(l *slog.Logger) Observer {
	return slogObserver{l}
}

type slogObserver struct{ l *slog.Logger }

// Observe implements Observer.
func (o slogObserver) Observe(e Event) {
	ctx := e.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	level := slogLevel(e)
	if !o.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	if e.Name != "" {
		attrs = append(attrs, slog.String("name", e.Name))
	}
	switch e.Kind {
	case EventAttempt, EventLock, EventExtend, EventRelease:
		attrs = append(attrs, slog.String("outcome", e.Outcome.String()),
			slog.Int("granted", e.Granted), slog.Int("refused", e.Refused), slog.Int("failed", e.Failed),
			slog.Duration("latency", e.Latency))
	}
	if e.Kind == EventLock {
		attrs = append(attrs, slog.Int("attempts", e.Attempts))
	}
	if e.InLock {
		attrs = append(attrs, slog.Bool("in_lock", true))
	}
	if e.Auto {
		attrs = append(attrs, slog.Bool("auto", true))
	}
	if e.Token != 0 {
		attrs = append(attrs, slog.Uint64("token", e.Token))
	}
	if e.Kind == EventLost {
		attrs = append(attrs, slog.String("cause", e.Cause.String()))
	}
	if e.Node != "" {
		attrs = append(attrs, slog.String("node", e.Node))
	}
	if e.Kind == EventNodeFailure {
		attrs = append(attrs, slog.String("kind", e.Failure.String()))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	msg := "redlock: unknown"
	if int(e.Kind) < len(slogMessages) && e.Kind != 0 {
		msg = slogMessages[e.Kind]
	}
	o.l.LogAttrs(ctx, level, msg, attrs...)
}

// slogMessages are the records' messages by kind, made once: "redlock: "
// and the kind's name.
var slogMessages = func() []string {
	m := make([]string, len(eventKindNames))
	for k := range m {
		m[k] = "redlock: " + EventKind(k).String()
	}
	return m
}()

// slogLevel is Warn for what went wrong, Debug for the rest.
func slogLevel(e Event) slog.Level {
	switch e.Kind {
	case EventNodeFailure, EventLost, EventReconnect:
		return slog.LevelWarn
	case EventRelease:
		if e.Outcome == OutcomeFailed || e.Outcome == OutcomeExpired {
			return slog.LevelWarn
		}
	}
	return slog.LevelDebug
}
