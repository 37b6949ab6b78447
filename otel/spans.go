package redlockotel

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumlock/quorumlock/redlock"
)

// The span names: one per call of the lock's API, and one per attempt of
// a Lock call.
const (
	spanLock     = "redlock.Lock"
	spanTryLock  = "redlock.TryLock"
	spanAttempt  = "redlock.Lock.attempt"
	spanExtend   = "redlock.Extend"
	spanUnlock   = "redlock.Unlock"
	eventNodeErr = "redlock.node.failure"
)

// span records the span of a call or an attempt that has just ended: the
// event arrives at its end, so the span starts Latency ago and ends now,
// under the span of the caller's context.
//
// A Lock call's attempts arrive before the call's own event, when its span
// cannot exist yet: each becomes a span of its own (redlock.Lock.attempt)
// beside the redlock.Lock span that later covers them, under the same
// parent. Nothing is kept between events, so nothing can leak or grow.
func (o *Observer) span(ctx context.Context, name string, e *redlock.Event) {
	end := time.Now()
	_, span := o.tracer.Start(ctx, name, trace.WithTimestamp(end.Add(-e.Latency)))
	if span.IsRecording() {
		// Attributes only for a span that is kept: with tracing off or
		// sampled out, a span costs no allocation here.
		span.SetAttributes(o.spanAttributes(e)...)
		if e.Err != nil {
			nodeFailureEvents(span, e.Err, end)
		}
		if failed(e) {
			span.SetAttributes(keyErrType.String(e.Outcome.String()))
			msg := e.Outcome.String()
			if e.Err != nil {
				msg = e.Err.Error() // the library's errors never hold a secret
			}
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End(trace.WithTimestamp(end))
}

// failed says whether the span's status is Error: every outcome but OK,
// except an attempt refused because another holder has the lock, which
// is the answer a TryLock exists to give (a Lock call that gives up
// refused is an error: its caller wanted the lock).
func failed(e *redlock.Event) bool {
	switch e.Outcome {
	case redlock.OutcomeOK:
		return false
	case redlock.OutcomeRefused:
		return e.Kind != redlock.EventAttempt
	}
	return true
}

func (o *Observer) spanAttributes(e *redlock.Event) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 10+len(o.attrs))
	kvs = append(kvs,
		keyName.String(e.Name),
		keyOutcome.String(e.Outcome.String()),
		keyGranted.Int(e.Granted),
		keyRefused.Int(e.Refused),
		keyFailed.Int(e.Failed),
		keyNodes.Int(e.Nodes),
		keyQuorum.Int(e.Quorum),
	)
	switch e.Kind {
	case redlock.EventLock:
		kvs = append(kvs, keyAttempts.Int(e.Attempts))
	case redlock.EventExtend:
		kvs = append(kvs, keyAuto.Bool(e.Auto))
	}
	if e.Token != 0 {
		kvs = append(kvs, keyToken.Int64(int64(e.Token)))
	}
	return append(kvs, o.attrs...)
}

// nodeFailureEvents adds an event per node that failed in the round, from
// the *redlock.QuorumError in err. The event's time is the round's end:
// the error does not say when each node failed.
func nodeFailureEvents(span trace.Span, err error, at time.Time) {
	var qe *redlock.QuorumError
	if !errors.As(err, &qe) || qe.Nodes == nil {
		return
	}
	for _, nerr := range qe.Nodes.Errors {
		var ne *redlock.NodeError
		if !errors.As(nerr, &ne) {
			continue
		}
		span.AddEvent(eventNodeErr, trace.WithTimestamp(at), trace.WithAttributes(
			keyNode.String(ne.Addr),
			keyErrType.String(failureKind(ne.Err).String()),
			keyErrMsg.String(ne.Err.Error()),
		))
	}
}

// failureKind classifies a node's failure in the terms of the core's
// EventNodeFailure (redlock.FailureKind), from the error a
// *redlock.NodeError holds. The core classifies the raw failure; the one
// difference is a connection whose set-up ran out of time, which the
// NodeError holds as ErrNodeTimeout: "timeout" here, "connection" in the
// core's event and the redlock.node.failures counter.
func failureKind(err error) redlock.FailureKind {
	var reply redis.Error
	switch {
	case errors.Is(err, redlock.ErrNodeTimeout):
		return redlock.FailureTimeout
	case errors.Is(err, redlock.ErrClosed):
		return redlock.FailureClosed
	case strings.Contains(err.Error(), "NOSCRIPT"):
		return redlock.FailureNoScript
	case errors.As(err, &reply):
		return redlock.FailureReply
	}
	return redlock.FailureConnection
}
