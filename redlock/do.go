package redlock

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Do takes the lock called name like Lock, keeps it extended (WithAutoExtend
// is implied; WithMaxHold applies), and runs fn while holding it. fn's
// context is cancelled as soon as the lock may be lost, with
// context.Cause(ctx) an error wrapping ErrLockLost (H2); fn must then stop
// touching the protected resource. When fn returns, the lock is released on
// a context detached from ctx, each node bounded by the node timeout (a
// release that fails only leaves keys to expire, and is not reported). Do
// returns Lock's error when the lock was not acquired; otherwise fn's error,
// joined with an error wrapping ErrLockLost when the lock was lost while fn
// ran.
func (c *Client) Do(ctx context.Context, name string, fn func(ctx context.Context) error, opts ...Option) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function for lock %q", ErrInvalidOption, name)
	}
	l, err := c.Lock(ctx, name, append(slices.Clip(opts), WithAutoExtend())...)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-l.Done():
			cancel(l.Err())
		case <-fctx.Done():
		}
	}()
	// H3: on every way out of fn, a panic included, stop watching and
	// release (which also stops the extension); a panic then goes on
	// unchanged.
	defer func() {
		cancel(nil)
		<-watched
		l.Unlock(context.WithoutCancel(ctx))
	}()
	ferr := fn(fctx)
	if lost := l.Err(); lost != nil { // nil while still held
		return errors.Join(lost, ferr)
	}
	return ferr
}
