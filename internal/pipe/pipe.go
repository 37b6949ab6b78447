package pipe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
)

var (
	// ErrTimeout is the error of a request whose deadline passed before
	// its reply arrived.
	ErrTimeout = errors.New("no reply before the deadline")
	// ErrClosed is the error of a request made after Close.
	ErrClosed = errors.New("redlock: client closed")
	// ErrNoScript is the error of a script the node did not know (NOSCRIPT):
	// the script did not run. The connection reloads its scripts.
	ErrNoScript = errors.New("script not loaded on the node")
)

// stats counts, over all nodes, the flushes written and the requests they
// carried: requests per flush is how well concurrent callers are batched.
var stats struct{ flushes, requests atomic.Int64 }

// Stats returns the flushes written and the requests sent, over all nodes
// of the process, since it started.
func Stats() (flushes, requests int64) { return stats.flushes.Load(), stats.requests.Load() }

// Handler receives the reply to a request: v is the reply, or err the
// failure (a Redis error reply, ErrTimeout, a network error). It is called
// exactly once per request, from a Node goroutine, and must not block.
type Handler interface {
	Reply(node int, v any, err error)
}

// Request is one command to one node. Args are shared, read-only, and may
// be the same slice for every node of a round.
type Request struct {
	Cmd      string
	Args     []any
	Deadline time.Time // the reply must arrive by then (A3); zero: see Timeout
	// Timeout is the deadline counted from when the request is written,
	// for requests nobody waits for (a release after a failed attempt,
	// A8): they are never dropped unsent because the writer was late.
	Timeout time.Duration
	H       Handler // nil: nobody waits
	Node    int     // passed back to H
}

func (r Request) reply(v any, err error) {
	if r.H != nil {
		r.H.Reply(r.Node, v, err)
	}
}

// Hooks are told of a Node's own events. A nil hook costs a nil check.
type Hooks struct {
	// Reconnect is called, on the writer's goroutine, when a connection
	// that died is replaced: err says why it died (ErrTimeout, a network
	// error). It must return quickly.
	Reconnect func(err error)
}

// ConnectError is the failure of a request that could not be sent because
// no connection could be made (dial, TLS, AUTH, SELECT): it reads as the
// underlying error, and tells it apart from a connection that broke.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

// errDied is the reason given to Hooks.Reconnect when nothing recorded why
// the connection died.
var errDied = errors.New("connection died")

// Node is the pipelined connection to one Redis node.
type Node struct {
	p       pool.Pool
	scripts []string // sources, loaded on every new connection
	hooks   Hooks

	mu      sync.Mutex
	queue   []Request
	writing bool  // the write token: its holder alone touches cur and writes
	cur     *conn // the current connection; nil before the first, or after a failed dial
	closed  bool
	wake    chan struct{}
	exited  chan struct{}
}

// NewNode starts the writer of node p. The scripts (their sources) are
// loaded with SCRIPT LOAD on each new connection before any request, so
// EVALSHA finds them: a warm connection never pays for EVAL.
func NewNode(p pool.Pool, scripts ...string) *Node {
	return NewNodeWithHooks(p, Hooks{}, scripts...)
}

// NewNodeWithHooks is NewNode with hooks told of the node's events.
func NewNodeWithHooks(p pool.Pool, h Hooks, scripts ...string) *Node {
	n := &Node{p: p, scripts: scripts, hooks: h, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	go n.writer()
	return n
}

// Addr returns the node's address.
func (n *Node) Addr() string { return n.p.Addr() }

// Do sends r; r's handler is called once its reply is in, or it failed.
// It never blocks on the node's socket (ALGORITHM.md C1). When the
// connection is up, nobody is writing and every request written on it has
// been answered, the caller writes r itself (one small write, no goroutine
// handoff: the latency of a lone caller): the node has read everything
// sent before, so the socket's buffers are empty and the write cannot
// block. Otherwise r is queued for the writer goroutine, which batches
// everything queued into one write and does any dialing, so a caller never
// waits for a dial, for other callers' writes, or for a frozen node that
// stopped reading.
func (n *Node) Do(r Request) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		r.reply(nil, ErrClosed)
		return
	}
	if !n.writing && len(n.queue) == 0 && n.cur != nil && n.cur.idle() {
		n.writing = true
		n.mu.Unlock()
		if cur := n.cur; cur.idle() { // the reader may have killed it meanwhile
			one := [1]Request{r}
			n.putToken(n.send(cur, one[:]))
			return
		}
		// It died: the writer reconnects; this caller never waits for a dial.
		n.mu.Lock()
		n.queue = append(n.queue, r)
		n.mu.Unlock()
		n.putToken(n.cur)
		return
	}
	n.queue = append(n.queue, r)
	n.mu.Unlock()
	n.kick()
}

// Call is Do for a caller that would only wait for r's reply anyway: it has
// no other node's reply to collect meanwhile and nothing else (a context)
// to wake up for. When it may write r itself (see Do), it also reads r's
// reply itself, with r's deadline on the connection (A3), and r.H has been
// called when Call returns. The reply then wakes the caller straight from
// the network poller, where otherwise the reader goroutine wakes up for it
// and then wakes the caller, two goroutine hand-offs per round trip (often
// a futex wake-up of another thread each). Otherwise Call is Do.
//
// C1: it blocks on the node's socket, but never beyond r's deadline; a
// caller with several nodes to collect must use Do, or one frozen node
// would hold up the replies of the others. Requests written behind r
// meanwhile are read by the connection's reader once r's reply is in: the
// replies come in the order written.
func (n *Node) Call(r Request) {
	n.mu.Lock()
	if n.closed || r.H == nil || n.writing || len(n.queue) > 0 || n.cur == nil || !n.cur.idle() {
		n.mu.Unlock()
		n.Do(r)
		return
	}
	n.writing = true
	cur := n.cur
	n.mu.Unlock()
	cur.inline(n, r)
}

func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// putToken records the connection to use next and gives the write token
// back, waking the writer if requests were queued meanwhile.
func (n *Node) putToken(cur *conn) {
	n.mu.Lock()
	n.cur = cur
	n.writing = false
	queued := len(n.queue) > 0 || n.closed
	n.mu.Unlock()
	if queued {
		n.kick()
	}
}

// Close fails what is queued, waits for what is in flight (each bounded by
// its deadline), gives the connection back and stops the goroutines.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	<-n.exited
}

// conn is one connection and its reader.
type conn struct {
	c      redis.Conn
	dead   atomic.Bool
	cause  atomic.Pointer[error] // why it died, when known
	reload atomic.Bool           // a NOSCRIPT was seen: load the scripts again
	done   chan struct{}
	// unanswered counts the requests written and not yet answered (or
	// failed) by the reader: while it is 0 the node has read everything
	// sent, so a write of one request cannot block (C1).
	unanswered atomic.Int64
	// rmu is held by whoever reads a reply: the reader, or a caller
	// reading its own (Call). A Call writes its request on an idle
	// connection, so before any request the reader has to read: the reader
	// takes rmu before each read (the replies come in the order written)
	// and before it closes the connection.
	rmu sync.Mutex

	// inflight holds the requests written, in write order, for the
	// reader; it grows as needed (an extension wave of many locks).
	mu       sync.Mutex
	inflight []Request
	head     int
	left     bool // the writer has left this connection
	signal   chan struct{}
}

// idle reports whether a caller may write on c itself: it is alive, needs
// no script reload, and every request written on it was answered.
func (c *conn) idle() bool {
	// unanswered first: the reader (or a Call) marks the connection dead,
	// or its scripts to reload, before it counts the request answered, so
	// a 0 read here comes with those marks visible.
	return c.unanswered.Load() == 0 && !c.dead.Load() && !c.reload.Load()
}

func (c *conn) push(r Request) {
	c.unanswered.Add(1)
	c.mu.Lock()
	c.inflight = append(c.inflight, r)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// leave tells the reader that nothing more will be written here.
func (c *conn) leave() {
	c.mu.Lock()
	c.left = true
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// pop returns the oldest request written, waiting for one; false once the
// writer has left and all were handed out.
func (c *conn) pop() (Request, bool) {
	for {
		c.mu.Lock()
		if c.head < len(c.inflight) {
			r := c.inflight[c.head]
			c.inflight[c.head] = Request{}
			c.head++
			if c.head == len(c.inflight) {
				c.inflight, c.head = c.inflight[:0], 0
			}
			c.mu.Unlock()
			return r, true
		}
		left := c.left
		c.mu.Unlock()
		if left {
			return Request{}, false
		}
		<-c.signal
	}
}

func (n *Node) writer() {
	defer close(n.exited)
	var batch []Request
	for {
		<-n.wake
		for {
			n.mu.Lock()
			if n.writing { // a caller holds the token; it kicks us when done
				n.mu.Unlock()
				break
			}
			batch, n.queue = n.queue, batch[:0]
			closed := n.closed
			n.writing = len(batch) > 0 && !closed
			n.mu.Unlock()
			if closed {
				fail(batch, ErrClosed)
				n.mu.Lock()
				drained := len(n.queue) == 0 && !n.writing
				n.mu.Unlock()
				if drained {
					if n.cur != nil {
						n.cur.leave()
						<-n.cur.done
					}
					return
				}
				continue
			}
			if len(batch) == 0 {
				break
			}
			cur := n.send(n.cur, batch)
			clear(batch) // drop references to handlers and args
			n.mu.Lock()
			n.cur = cur
			n.writing = false
			n.mu.Unlock()
		}
	}
}

// send writes batch on cur (or a new connection when cur is dead) and
// returns the connection to use next.
func (n *Node) send(cur *conn, batch []Request) *conn {
	now := time.Now()
	live := batch[:0]
	for _, r := range batch {
		if r.Deadline.IsZero() {
			r.Deadline = now.Add(r.Timeout)
		}
		if !now.Before(r.Deadline) {
			r.reply(nil, ErrTimeout)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return cur
	}
	if cur != nil && cur.dead.Load() {
		cur.leave() // its reader fails what is left, then exits
		if n.hooks.Reconnect != nil {
			cause := errDied
			if p := cur.cause.Load(); p != nil {
				cause = *p
			}
			n.hooks.Reconnect(cause)
		}
		cur = nil
	}
	if cur == nil {
		c, err := n.connect()
		if err != nil {
			fail(live, &ConnectError{err})
			return nil
		}
		cur = c
	}
	if cur.reload.Swap(false) {
		n.loadScripts(cur)
	}
	for i, r := range live {
		if err := cur.c.Send(r.Cmd, r.Args...); err != nil {
			cur.killWith(err)
			fail(live[i:], err)
			return cur
		}
		cur.push(r)
	}
	if err := cur.c.Flush(); err != nil {
		cur.killWith(err) // the reader fails what was sent
	}
	stats.flushes.Add(1)
	stats.requests.Add(int64(len(live)))
	return cur
}

// setupTimeout bounds taking a new connection (dial, AUTH, TLS) and loading
// the scripts on it. It is the connection's own budget, not a request's: a
// node farther away than one node timeout can still be reached, and the
// requests waiting meanwhile fail at their own deadlines (the callers do
// not wait for the dial).
const setupTimeout = time.Second

// connect takes a connection from the pool, starts its reader and queues
// the scripts' loading.
func (n *Node) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	rc, err := n.p.Get(ctx)
	if err != nil {
		return nil, err
	}
	c := &conn{c: rc, signal: make(chan struct{}, 1), done: make(chan struct{})}
	go c.reader()
	n.loadScripts(c)
	return c, nil
}

// loadScripts sends SCRIPT LOAD for every script; the replies are read and
// dropped (a failure shows on the EVALSHA that follows, as NOSCRIPT).
func (n *Node) loadScripts(c *conn) {
	deadline := time.Now().Add(setupTimeout)
	for _, s := range n.scripts {
		r := Request{Cmd: "SCRIPT", Args: []any{"LOAD", s}, Deadline: deadline}
		if c.c.Send(r.Cmd, r.Args...) != nil {
			c.kill()
			return
		}
		c.push(r)
	}
}

// inline writes r alone on c, an idle connection, with the write token
// held, gives the token back and reads r's reply itself (Call).
func (c *conn) inline(n *Node, r Request) {
	if !c.idle() { // the reader killed it meanwhile: the writer reconnects
		n.putToken(c)
		n.Do(r)
		return
	}
	if r.Deadline.IsZero() { // as Do: the timeout counts from the write
		r.Deadline = time.Now().Add(r.Timeout)
	}
	if !time.Now().Before(r.Deadline) {
		n.putToken(c)
		r.reply(nil, ErrTimeout)
		return
	}
	// Unanswered from before it is written: callers that come meanwhile
	// queue for the writer (C1), and the writer writes behind it. rmu is
	// free of the reader (with nothing unanswered it is not reading), but
	// a previous Call may still be running its reply's handler.
	c.unanswered.Add(1)
	c.rmu.Lock()
	if !time.Now().Before(r.Deadline) { // it passed while that handler ran
		c.unanswered.Add(-1)
		c.rmu.Unlock()
		n.putToken(c)
		r.reply(nil, ErrTimeout)
		return
	}
	err := c.c.Send(r.Cmd, r.Args...)
	if err == nil {
		err = c.c.Flush()
	}
	stats.flushes.Add(1)
	stats.requests.Add(1)
	if err != nil {
		c.killWith(err) // before the writer may write behind it
	}
	n.putToken(c) // the writer may write behind r while r's reply is read
	var v any
	if err == nil {
		v, _, err = c.receive(r)
	}
	c.unanswered.Add(-1)
	r.reply(v, err) // before the reader hands out the replies behind it
	c.rmu.Unlock()
}

// receive reads r's reply with r's deadline on the connection (A3); a late
// or failed read kills the connection, and says so (broke). c.rmu is held.
func (c *conn) receive(r Request) (v any, broke bool, err error) {
	// A reply already in our buffer counts even if this goroutine was
	// scheduled late: allow a millisecond of our own noise.
	d := max(time.Until(r.Deadline), time.Millisecond)
	v, err = redis.ReceiveWithTimeout(c.c, d)
	var rerr redis.Error
	switch {
	case err == nil:
	case errors.As(err, &rerr):
		if strings.HasPrefix(string(rerr), "NOSCRIPT") {
			c.reload.Store(true)
			err = fmt.Errorf("%w: %v", ErrNoScript, rerr)
		}
	default:
		if isTimeout(err) {
			err = ErrTimeout
		}
		c.killWith(err)
		broke = true
	}
	return v, broke, err
}

// kill marks the connection dead: no more requests go on it, and the reader
// fails what is in flight. Only the reader closes it (redigo's pooled Close
// reads pending replies, which must not race with the reader's Receive);
// a read or write error has already broken it, so that close is at once.
func (c *conn) kill() { c.dead.Store(true) }

// killWith kills the connection and records why, for the requests it fails.
func (c *conn) killWith(err error) {
	c.cause.CompareAndSwap(nil, &err)
	c.kill()
}

// reader reads the replies in order, each with its request's deadline on
// the connection. A late or failed read kills the connection; every request
// after it fails.
func (c *conn) reader() {
	defer close(c.done)
	defer c.c.Close()
	defer c.kill()
	var cause error // why the connection died, for the requests after it
	for {
		r, ok := c.pop()
		if !ok {
			c.rmu.Lock() // a Call still reading: the deferred Close waits for it
			c.rmu.Unlock()
			return
		}
		c.rmu.Lock() // after a Call's read: its reply comes first
		if c.dead.Load() {
			c.rmu.Unlock()
			if cause == nil {
				// Killed from outside (a write failed, or its deadline
				// passed unread): no reply will come in time.
				c.cause.CompareAndSwap(nil, &ErrTimeout)
				cause = ErrTimeout
				if p := c.cause.Load(); p != nil {
					cause = *p
				}
			}
			c.done1(r, nil, cause)
			continue
		}
		v, broke, err := c.receive(r)
		c.rmu.Unlock()
		if broke {
			cause = err
		}
		c.done1(r, v, err)
	}
}

// done1 hands r its outcome and counts it answered (C1).
func (c *conn) done1(r Request, v any, err error) {
	c.unanswered.Add(-1)
	r.reply(v, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func fail(rs []Request, err error) {
	for i := range rs {
		rs[i].reply(nil, err)
	}
}
