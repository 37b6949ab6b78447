package redlock

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults. Each is explained on its option.
const (
	DefaultTTL         = 10 * time.Second
	DefaultTries       = 32
	DefaultDriftFactor = 0.01
	DefaultNodeTimeout = 50 * time.Millisecond
	// DriftConstant is added to TTL*drift factor: it covers the clocks'
	// granularity (node-redlock's +2 ms).
	DriftConstant = 2 * time.Millisecond
	// MaxNameLen is the longest lock name accepted, in bytes.
	MaxNameLen = 1024
)

// Option configures a Client (New) as a default for every call, or one
// call (Lock, TryLock) as an override of that default.
type Option func(*config)

type config struct {
	ttl         time.Duration
	tries       int
	retryDelay  func(attempt int) time.Duration
	driftFactor float64
	nodeTimeout time.Duration
	autoExtend  bool
	maxHold     time.Duration
	fencing     bool
	holder      string     // the holder's label (WithHolder), "" for none
	observers   []Observer // client option only (WithObserver)
	call        *lockCall  // a Lock call's bookkeeping, when observed (observe_emit.go)
}

func defaultConfig() config {
	return config{
		ttl:         DefaultTTL,
		tries:       DefaultTries,
		retryDelay:  DefaultRetryDelay,
		driftFactor: DefaultDriftFactor,
		nodeTimeout: DefaultNodeTimeout,
	}
}

// WithTTL sets the lock's time to live on the nodes. The holder may assume
// it holds the lock until Until(): TTL minus the drift allowance after the
// attempt started. Default: 10s (the Redlock text's example; long enough
// that a few slow round trips cost little of it).
func WithTTL(ttl time.Duration) Option { return func(c *config) { c.ttl = ttl } }

// WithTries sets how many attempts Lock makes, the first one included;
// TryLock always makes one. Default: 32 (redsync's), which with the default
// delay waits about 5 s for a contended lock; pass a context deadline to
// bound the wait in time instead.
func WithTries(n int) Option { return func(c *config) { c.tries = n } }

// WithRetryDelay sets the pause before attempt+1, as a stateless function
// of the attempt number (1 after the first attempt). It must be safe for
// concurrent use. Default: DefaultRetryDelay, uniform in [50ms, 250ms)
// (ALGORITHM.md A9: jitter keeps contenders from colliding again).
func WithRetryDelay(f func(attempt int) time.Duration) Option {
	return func(c *config) { c.retryDelay = f }
}

// WithDriftFactor sets rho: the lock's deadline is shortened by
// TTL*rho + 2ms to cover clock drift between this process and the nodes
// (ALGORITHM.md A7). It must be in [0, 0.5). Default: 0.01, as in the
// Redlock text, redsync and node-redlock.
func WithDriftFactor(rho float64) Option { return func(c *config) { c.driftFactor = rho } }

// WithNodeTimeout sets tau, the hard deadline of one request to one node,
// enforced on the round trip itself (ALGORITHM.md A3). A frozen node costs
// at most this much, and only in the background. It must be > 0 and < TTL.
// Default: 50ms, the top of the Redlock text's 5-50 ms for a 10 s TTL; raise
// it for nodes more than a few ms away.
func WithNodeTimeout(tau time.Duration) Option { return func(c *config) { c.nodeTimeout = tau } }

// WithAutoExtend keeps the lock extended in the background, about every
// TTL/3, until Unlock; an extension that fails is retried while validity
// remains, and when none can succeed before Until() the lock is given up:
// Done() closes with ErrLockLost, then the keys are released (ALGORITHM.md
// E4, H2). Default: off (the lock lives one TTL unless Extend is called).
func WithAutoExtend() Option { return func(c *config) { c.autoExtend = true } }

// WithMaxHold stops auto-extension once the lock has been held this long, so
// a stuck holder cannot keep it for ever: the lock then ends at its Until(),
// at most max hold + TTL after it was taken, and Done() closes with
// ErrLockLost. It needs WithAutoExtend (Do implies it). Default: 0, no cap.
func WithMaxHold(d time.Duration) Option { return func(c *config) { c.maxHold = d } }

// WithFencing gives every acquisition a fencing token (Lock.Token) that is
// strictly greater than the token of every earlier acquisition of the same
// name, computed over the quorum (ALGORITHM.md F1-F4): the protected
// resource accepts a write only with a token at least as large as the
// largest it has seen (F5), which stops a holder that paused past its
// deadline. The counters live in a key per name with no TTL that is never
// deleted, so each node must keep its data across restarts: appendonly yes
// with appendfsync always (N2); a node that comes back without its data can
// hand out a token again. The usual case costs no extra round trip; a second
// one is needed only when the nodes' counters differ. Default: off (Token()
// is 0).
func WithFencing() Option { return func(c *config) { c.fencing = true } }

// WithHolder labels the acquisitions with label, next to the host name, the
// process id and the time that every acquisition records (ALGORITHM.md
// M1): Client.Holder and `redlock status` show who holds a lock, and
// `redlock unlock --force` shows whom it is about to break. The label is
// written into the lock's value on the nodes, so it must not be a secret.
// It must be valid UTF-8 of at most MaxHolderLen (128) bytes, without
// control characters. Default: "", no label.
func WithHolder(label string) Option { return func(c *config) { c.holder = label } }

// fenceArg is the scripts' fencing flag (F1): "1" to count, "0" not to.
func (c *config) fenceArg() string {
	if c.fencing {
		return "1"
	}
	return "0"
}

// DefaultRetryDelay returns a random delay in [50ms, 250ms), whatever the
// attempt: redsync's range, jittered so that contenders spread out.
func DefaultRetryDelay(int) time.Duration {
	return 50*time.Millisecond + rand.N(200*time.Millisecond)
}

// driftAllowance returns D = TTL*rho + 2ms (ALGORITHM.md, Words).
func driftAllowance(ttl time.Duration, rho float64) time.Duration {
	return time.Duration(float64(ttl)*rho) + DriftConstant
}

func (c *config) apply(opts []Option) {
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
}

// validate checks the whole configuration once and names the bad value.
func (c *config) validate() error {
	if err := validTTL(c.ttl, c.driftFactor, c.nodeTimeout); err != nil {
		return err
	}
	if err := validHolder(c.holder); err != nil {
		return err
	}
	switch {
	case c.tries < 1:
		return fmt.Errorf("%w: tries %d: must be >= 1", ErrInvalidOption, c.tries)
	case c.retryDelay == nil:
		return fmt.Errorf("%w: retry delay: nil function", ErrInvalidOption)
	case c.maxHold < 0:
		return fmt.Errorf("%w: max hold %v: must be >= 0", ErrInvalidOption, c.maxHold)
	case c.maxHold > 0 && !c.autoExtend:
		return fmt.Errorf("%w: max hold %v: needs WithAutoExtend", ErrInvalidOption, c.maxHold)
	}
	return nil
}

// validTTL checks the drift factor, the node timeout and a TTL against them.
func validTTL(ttl time.Duration, rho float64, tau time.Duration) error {
	switch {
	case math.IsNaN(rho) || rho < 0 || rho >= 0.5:
		return fmt.Errorf("%w: drift factor %v: must be in [0, 0.5)", ErrInvalidOption, rho)
	case ttl <= 0:
		return fmt.Errorf("%w: TTL %v: must be > 0", ErrInvalidOption, ttl)
	case ttl%time.Millisecond != 0:
		return fmt.Errorf("%w: TTL %v: must be a whole number of milliseconds (Redis PX)", ErrInvalidOption, ttl)
	case tau <= 0:
		return fmt.Errorf("%w: node timeout %v: must be > 0", ErrInvalidOption, tau)
	case tau >= ttl:
		return fmt.Errorf("%w: node timeout %v: must be < TTL %v", ErrInvalidOption, tau, ttl)
	}
	if d := driftAllowance(ttl, rho); ttl <= d+tau {
		return fmt.Errorf("%w: TTL %v: leaves no validity after the drift allowance %v and the node timeout %v", ErrInvalidOption, ttl, d, tau)
	}
	return nil
}

func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty lock name", ErrInvalidOption)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: lock name of %d bytes (%.20q...): longer than %d", ErrInvalidOption, len(name), name, MaxNameLen)
	}
	return nil
}
