package redlock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/internal/pipe"
	"github.com/quorumlock/quorumlock/internal/quorum"
)

// KeyState is what one node's lock key holds.
type KeyState string

// The states of a node's lock key.
const (
	KeyFree KeyState = "free" // no key
	KeyHeld KeyState = "held" // a lock, with its holder (M1)
	// KeyNoHolder is a lock whose value records no holder: taken by a
	// client of an earlier version, or written by another program.
	KeyNoHolder KeyState = "held-no-holder"
	// KeyReserved is a reservation for the first waiter in line (L2):
	// nobody holds the lock, and only that waiter can take it.
	KeyReserved KeyState = "reserved"
	// KeyOther is a key of another type than string: not a lock, and no
	// lock can be taken on this node while it is there (WRONGTYPE).
	KeyOther KeyState = "not-a-lock"
)

// Verdict is the quorum's view of a lock, judged from the nodes' answers.
type Verdict string

// The verdicts. Q is the quorum, N/2+1 of the configured nodes (A5).
const (
	// VerdictHeld: Q nodes hold one lock value (the same fingerprint).
	VerdictHeld Verdict = "held by a quorum"
	// VerdictReserved: Q nodes hold one reservation for the next in line.
	VerdictReserved Verdict = "reserved for the next in line"
	// VerdictFree: Q or more nodes answered and none has the key.
	VerdictFree Verdict = "free"
	// VerdictSplit: Q or more nodes answered, some have the key, but no
	// value is on Q of them: nobody holds the lock (a holder's keys
	// expiring, a failed attempt being undone, nodes that missed a release).
	VerdictSplit Verdict = "split"
	// VerdictUnknown: fewer than Q nodes answered, so nothing can be said.
	VerdictUnknown Verdict = "unknown"
)

// NodeHolder is one node's view of a lock, as Client.Holder reads it.
type NodeHolder struct {
	Addr   string   // the node's address
	State  KeyState // "" when the node could not be read (Err)
	Holder *Holder  // the holder when State is KeyHeld, else nil
	// TTL is what is left of the key's time to live on the node: 0 when
	// free, -1 when the key has no expiry.
	TTL time.Duration
	// Fingerprint is the first 8 hex digits of the SHA-1 of the key's
	// whole value: nodes that hold one acquisition show the same one,
	// while the value itself, whose secret releases and extends the lock,
	// never leaves the node (M2). "" when free or not a string.
	Fingerprint string
	// Counter is the name's fencing counter on the node (F), or -1 when it
	// has none.
	Counter int64
	Err     error // a *NodeError when the node could not be read, else nil
}

// HolderStatus is the lock's state on every node and the quorum's verdict.
type HolderStatus struct {
	Name    string
	Quorum  int          // Q: how many nodes must agree
	Nodes   []NodeHolder // one per node, in the client's order
	Verdict Verdict
	// Holder is the holder whose value Q nodes share (VerdictHeld with a
	// recorded holder), else nil.
	Holder *Holder
	// Fingerprint is the value Q nodes share (VerdictHeld and
	// VerdictReserved), else "".
	Fingerprint string
}

// Answered returns how many nodes answered.
func (s *HolderStatus) Answered() int {
	n := 0
	for _, nd := range s.Nodes {
		if nd.Err == nil {
			n++
		}
	}
	return n
}

// Holder reads who holds lock name on every node, in parallel, each request
// bounded by the node timeout (A3), and judges the answers against the
// quorum: it names a holder only when Q nodes hold one value (ALGORITHM.md
// M2). It reads with a read-only script that returns the holder part of the
// value, never the value's secret, so the answer may be shown to anyone.
// It waits for every node (at most the node timeout), not just a quorum:
// it is a report of each node.
//
// A node that cannot be read has its *NodeError in Nodes, and fewer than Q
// answers give VerdictUnknown; Holder's error is nil then. It returns an
// error only for a bad name (ErrInvalidOption), a closed client (ErrClosed)
// or when ctx ended (its error, with what had been read by then).
//
// Like every answer from the nodes, it is stale the moment it arrives: it
// is for people and monitoring, never for deciding whether one holds a lock
// (H1).
func (c *Client) Holder(ctx context.Context, name string) (*HolderStatus, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := c.closed(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tau := c.cfg.nodeTimeout
	g := c.gather(ctx, tau, "EVAL", []any{holderSrc, 2, LockKey(name), CounterKey(name)})
	st := &HolderStatus{Name: name, Quorum: quorum.Majority(len(c.nodes)), Nodes: make([]NodeHolder, len(c.nodes))}
	for i, n := range c.nodes {
		nh := &st.Nodes[i]
		nh.Addr, nh.Counter = n.Addr(), -1
		if err := g.errs[i]; err != nil {
			nh.Err = nodeError(nh.Addr, err, tau)
			continue
		}
		if err := readNode(nh, g.replies[i]); err != nil {
			nh.State, nh.Err = "", &NodeError{Addr: nh.Addr, Err: err}
		}
	}
	st.judge()
	return st, g.ctxErr
}

// readNode fills nh from holder.lua's reply.
func readNode(nh *NodeHolder, reply any) error {
	r, err := redis.Values(reply, nil)
	if err == nil && len(r) != 5 {
		err = fmt.Errorf("unexpected reply of %d elements", len(r))
	}
	if err != nil {
		return err
	}
	state, _ := redis.String(r[0], nil)
	nh.State = KeyState(state)
	if nh.State == KeyHeld {
		part, _ := r[1].([]byte)
		if nh.Holder, err = parseHolder(part); err != nil {
			return err
		}
	}
	if ms, _ := redis.Int64(r[2], nil); ms > 0 {
		nh.TTL = time.Duration(ms) * time.Millisecond
	} else if ms == -1 {
		nh.TTL = -1
	}
	if fp, ok := r[3].([]byte); ok {
		nh.Fingerprint = string(fp)
	}
	if ctr, ok := r[4].([]byte); ok {
		if n, err := strconv.ParseInt(string(ctr), 10, 64); err == nil {
			nh.Counter = n
		}
	}
	switch nh.State {
	case KeyFree, KeyHeld, KeyNoHolder, KeyReserved, KeyOther:
		return nil
	}
	return fmt.Errorf("unexpected key state %q", state)
}

// judge sets the verdict (M2): a holder is named only when Q of the
// configured nodes (A5) hold one value, told apart by fingerprint.
func (s *HolderStatus) judge() {
	s.Verdict, s.Holder, s.Fingerprint = VerdictUnknown, nil, ""
	count := map[string]int{}
	answered, keys := 0, 0
	for _, n := range s.Nodes {
		if n.Err != nil {
			continue
		}
		answered++
		if n.State != KeyFree {
			keys++
		}
		if n.Fingerprint != "" {
			count[n.Fingerprint]++
		}
	}
	for i, n := range s.Nodes {
		if n.Err != nil || n.Fingerprint == "" || count[n.Fingerprint] < s.Quorum {
			continue
		}
		s.Verdict, s.Fingerprint = VerdictHeld, n.Fingerprint
		if n.State == KeyReserved {
			s.Verdict = VerdictReserved
		}
		s.Holder = s.Nodes[i].Holder
		return
	}
	switch {
	case answered < s.Quorum:
		s.Verdict = VerdictUnknown
	case keys == 0:
		s.Verdict = VerdictFree
	default:
		s.Verdict = VerdictSplit
	}
}

// closed returns an error wrapping ErrClosed once Close has started.
func (c *Client) closed() error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
		return nil
	}
}

// nodeError wraps one node's failure as a round does (round.errors,
// nodeCause): a missed deadline becomes ErrNodeTimeout.
func nodeError(addr string, err error, tau time.Duration) *NodeError {
	return &NodeError{Addr: addr, Err: nodeCause(err, tau)}
}

// gathered is one command's replies from every node: unlike a round, it
// waits for all of them (each bounded by tau), not for a quorum.
type gathered struct {
	mu      sync.Mutex
	replies []any
	errs    []error
	in      []bool
	left    int
	done    chan struct{}
	ctxErr  error
}

// Reply implements pipe.Handler.
func (g *gathered) Reply(i int, v any, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.in[i] {
		return
	}
	g.in[i], g.replies[i], g.errs[i] = true, v, err
	if g.left--; g.left == 0 {
		close(g.done)
	}
}

// gather sends cmd args to every node, each with the hard deadline tau
// (A3), and returns once all answered, the deadline passed (those still
// silent fail with pipe.ErrTimeout) or ctx ended (they fail with its error).
func (c *Client) gather(ctx context.Context, tau time.Duration, cmd string, args []any) *gathered {
	n := len(c.nodes)
	g := &gathered{replies: make([]any, n), errs: make([]error, n), in: make([]bool, n), left: n, done: make(chan struct{})}
	deadline := time.Now().Add(tau)
	for i, nd := range c.nodes {
		nd.Do(pipe.Request{Cmd: cmd, Args: args, Deadline: deadline, H: g, Node: i})
	}
	await(ctx, g.done, deadline, g.expire)
	return g
}

// expire fails the nodes still silent: with the caller's context error
// when it ended (ctxErr), else with pipe.ErrTimeout.
func (g *gathered) expire(ctxErr error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.left == 0 { // all in after all
		return
	}
	late := error(pipe.ErrTimeout)
	if ctxErr != nil {
		g.ctxErr, late = ctxErr, ctxErr
	}
	for i := range g.in {
		if !g.in[i] {
			g.in[i], g.errs[i] = true, late
		}
	}
}
