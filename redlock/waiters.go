package redlock

import (
	"container/list"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
)

// waiters wakes Lock callers when a lock they wait for is released, instead
// of leaving them to poll: Unlock's script publishes on a channel per name
// (LockKey(name) + ":released"), and a reservation for a waiter on its
// client's channel of the name (LockKey(name) + ":released:" + the
// client's channel id, L10). The client keeps one subscription connection
// per node, shared by all its waiters, subscribed to the names someone
// waits for, and for a while after (linger). Messages can be lost (a node
// down, a connection replaced): the jittered retry delay stays as the
// fallback, so liveness never depends on a message.
type waiters struct {
	subs []*subscriber // per node; nil where the pool cannot dial (no wake-ups there)

	mu           sync.Mutex
	groups       map[string]*group // the channel sets subscribed, by groupKey
	idle         *list.List        // the lingering groups, oldest first
	linger       time.Duration     // how long a group stays subscribed with nobody waiting
	idleChannels int               // the channels of the groups in idle
	closed       bool
	expires      sync.WaitGroup // linger timers scheduled or running
}

// lingerFor is how long a name's channels stay subscribed after its last
// waiter of the client left (L10): a client that locks the same name again
// within it finds them subscribed and sends nothing, instead of a
// SUBSCRIBE and an UNSUBSCRIBE per channel and node for every Lock call
// that waits, which on a busy name cost the nodes more than the locking.
// Long enough to span the gaps between a service's acquisitions of a busy
// name; short enough that a name no longer used stops costing a PUBLISH
// fan-out within seconds.
const lingerFor = 10 * time.Second

// maxLingering bounds the names that linger per client (L10): past it, the
// one that has lingered longest is unsubscribed at once, so a client that
// locks many distinct names keeps at most this many subscribed for nobody.
const maxLingering = 256

// maxLingeringChannels bounds the channels those names hold (L10): a
// semaphore's name has one per permit, up to MaxPermits, and 256 of them
// would keep a quarter of a million channels subscribed on every node.
const maxLingeringChannels = 1024

// group is the channels waiters of one name listen on (for a lock: the
// name's channel and the client's own channel of the name), subscribed on
// every node while any of them waits and for linger after the last left.
// keeper stands in the subscriber's sets for the group's whole life, so a
// channel is not unsubscribed when its last bell leaves (nor when an
// Election observer listening on the same channel stops).
type group struct {
	key      string
	channels []string
	keeper   *wakeup
	waiting  int           // bells listening
	elem     *list.Element // in idle while lingering
	timer    *time.Timer   // ends the linger
	gen      int           // counts lingers: a timer ends only its own
}

func newWaiters(pools []pool.Pool) *waiters {
	w := &waiters{subs: make([]*subscriber, len(pools)), groups: map[string]*group{}, idle: list.New(), linger: lingerFor}
	for i, p := range pools {
		if d, ok := p.(pool.Dialer); ok {
			ctx, cancel := context.WithCancel(context.Background())
			w.subs[i] = &subscriber{d: d, node: i, chans: map[string]map[*wakeup]struct{}{}, ctx: ctx, cancel: cancel, done: make(chan struct{}), stop: make(chan struct{})}
		}
	}
	return w
}

// wait rings bell when releases of name are announced, until the function
// it returns is called: on the name's channel, where a release with nobody
// in line is announced to every waiter, and on the client's own channel of
// the name, where a reservation for one of its waiters is announced with
// that waiter's id (L2, L10: wakeup.announced rings only the waiter named).
func (w *waiters) wait(name, cid string, bell *wakeup) func() {
	return w.listen(bell, lockChannels(name, cid)...)
}

// lockChannels are the channels a client's waiters of lock name listen on:
// the name's, and the client's own of the name (L10).
func lockChannels(name, cid string) []string {
	all := LockKey(name) + releasedSuffix
	return []string{all, all + ":" + cid}
}

// recent reports whether the client's waiters of lock name listen on its
// channels, or did a moment ago (they linger, L10): the name is busy, and
// the next Lock call enters the line with its first attempt (L11).
func (w *waiters) recent(name, cid string) bool {
	// The group's key (listen's: the channels joined by NUL), built on the
	// stack: every Lock call asks, and the lookup of string(b) does not
	// allocate.
	var buf [160]byte
	b := append(append(append(buf[:0], KeyPrefix+"{"...), name...), "}"+releasedSuffix+"\x00"+KeyPrefix+"{"...)
	b = append(append(append(b, name...), "}"+releasedSuffix+":"...), cid...)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.groups[string(b)] != nil
}

// listen rings bell on every message on channels until the function it
// returns is called. The channels stay subscribed while anyone listens on
// them, and for linger after (L10).
func (w *waiters) listen(bell *wakeup, channels ...string) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return func() {}
	}
	key := strings.Join(channels, "\x00")
	g := w.groups[key]
	if g == nil {
		g = &group{key: key, channels: channels, keeper: newWakeup("", len(w.subs))}
		w.groups[key] = g
		w.each(func(s *subscriber) { s.add(g.keeper, g.channels...) })
	} else if g.elem != nil { // lingering: back in use, subscribed still
		w.unidleLocked(g)
		w.stopTimer(g)
	}
	g.waiting++
	w.each(func(s *subscriber) { s.add(bell, g.channels...) })
	var once sync.Once
	return func() { once.Do(func() { w.unlisten(g, bell) }) }
}

// unlisten stops ringing bell; when it was the group's last, the group
// lingers, and the longest lingering ones go past maxLingering names or
// maxLingeringChannels channels.
func (w *waiters) unlisten(g *group, bell *wakeup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.each(func(s *subscriber) { s.remove(bell, g.channels...) })
	if g.waiting--; g.waiting > 0 {
		return
	}
	g.elem = w.idle.PushBack(g)
	w.idleChannels += len(g.channels)
	g.gen++
	gen := g.gen
	w.expires.Add(1)
	g.timer = time.AfterFunc(w.linger, func() {
		defer w.expires.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.closed && g.elem != nil && g.gen == gen {
			w.dropLocked(g)
		}
	})
	for w.idle.Len() > maxLingering || w.idleChannels > maxLingeringChannels {
		old := w.idle.Front().Value.(*group)
		w.stopTimer(old)
		w.dropLocked(old)
	}
}

// stopTimer stops g's linger timer, if it had not fired.
func (w *waiters) stopTimer(g *group) {
	if g.timer != nil && g.timer.Stop() {
		w.expires.Done()
	}
	g.timer = nil
}

// unidleLocked takes the lingering group g out of idle.
func (w *waiters) unidleLocked(g *group) {
	w.idle.Remove(g.elem)
	w.idleChannels -= len(g.channels)
	g.elem = nil
}

// dropLocked unsubscribes the lingering group g.
func (w *waiters) dropLocked(g *group) {
	w.unidleLocked(g)
	delete(w.groups, g.key)
	w.each(func(s *subscriber) { s.remove(g.keeper, g.channels...) })
}

// each calls f for every node that subscribes.
func (w *waiters) each(f func(*subscriber)) {
	for _, s := range w.subs {
		if s != nil {
			f(s)
		}
	}
}

func (w *waiters) close() {
	w.mu.Lock()
	w.closed = true
	for _, g := range w.groups {
		w.stopTimer(g)
	}
	w.mu.Unlock()
	w.expires.Wait() // a timer that fired finds the waiters closed
	for _, s := range w.subs {
		if s != nil {
			s.close()
		}
	}
}

// pingEvery is how often an idle subscription checks that its node still
// answers; after three missed pongs the connection is replaced.
const pingEvery = 3 * time.Second

// The subscription's back-off after a failure (C2): it starts at
// minBackoff, doubles after every failure (a dial error, a refused
// SUBSCRIBE, a lost connection) up to maxBackoff, and starts over only once
// the node confirmed a SUBSCRIBE. A node that refuses the channel (an ACL
// user without channel rights) is asked again at most every maxBackoff,
// and its waiters poll meanwhile.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// subscriber is the subscription connection to one node. Its goroutines
// (the receiving loop and the sender) start with the first waiter and live
// until the client closes. Callers never write on the connection
// themselves (C1): they queue SUBSCRIBE and UNSUBSCRIBE for the sender.
type subscriber struct {
	d      pool.Dialer
	node   int                // the node's index, passed to the bells
	ctx    context.Context    // ends with close: a dial in progress stops
	cancel context.CancelFunc // ends ctx

	mu        sync.Mutex
	chans     map[string]map[*wakeup]struct{}
	conn      redis.Conn // nil while disconnected
	pending   [][]any    // commands for the sender to write on conn
	started   bool
	closed    bool
	confirmed bool // the node confirmed a SUBSCRIBE on conn
	lastSeen  time.Time
	pinger    *time.Timer
	kick      chan struct{} // wakes the sender
	done      chan struct{} // closed when the receiving loop exits
	sent      chan struct{} // closed when the sender exits
	stop      chan struct{} // closed by close
}

// add rings bell on messages on channels, subscribing (one SUBSCRIBE) to
// those nobody listened on.
func (s *subscriber) add(bell *wakeup, channels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if !s.started {
		s.started = true
		s.kick, s.sent = make(chan struct{}, 1), make(chan struct{})
		go s.loop()
		go s.sender()
	}
	cmd := []any{"SUBSCRIBE"}
	for _, ch := range channels {
		set := s.chans[ch]
		if set == nil {
			set = map[*wakeup]struct{}{}
			s.chans[ch] = set
			cmd = append(cmd, ch)
		}
		set[bell] = struct{}{}
	}
	if len(cmd) > 1 {
		s.queueLocked(cmd...)
	}
}

// remove stops ringing bell on channels, unsubscribing (one UNSUBSCRIBE)
// from those nobody listens on any more.
func (s *subscriber) remove(bell *wakeup, channels ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := []any{"UNSUBSCRIBE"}
	for _, ch := range channels {
		set := s.chans[ch]
		delete(set, bell)
		if len(set) == 0 && set != nil {
			delete(s.chans, ch)
			cmd = append(cmd, ch)
		}
	}
	if len(cmd) > 1 {
		s.queueLocked(cmd...)
	}
}

// queueLocked queues a command for the sender, if connected: a command
// for a connection that is gone is moot (the next one subscribes to every
// channel waited on then).
func (s *subscriber) queueLocked(args ...any) {
	if s.conn == nil {
		return
	}
	s.pending = append(s.pending, args)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sender writes the queued commands, so that no caller ever blocks on the
// node's socket (C1); a write to a frozen node blocks only this goroutine,
// up to the pool's write timeout. A failed write shows up in the receiving
// loop, which reconnects.
func (s *subscriber) sender() {
	defer close(s.sent)
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			return
		}
		s.mu.Lock()
		conn, cmds := s.conn, s.pending
		s.pending = nil
		s.mu.Unlock()
		if conn == nil || len(cmds) == 0 {
			continue
		}
		for _, c := range cmds {
			if conn.Send(c[0].(string), c[1:]...) != nil {
				break
			}
		}
		conn.Flush()
	}
}

func (s *subscriber) close() {
	s.cancel() // a dial in progress ends now, not at its timeout
	s.mu.Lock()
	s.closed = true
	close(s.stop)
	conn, started := s.conn, s.started
	if s.pinger != nil {
		s.pinger.Stop()
	}
	s.mu.Unlock()
	if conn != nil {
		conn.Close() // unblocks the receiving goroutine (and a blocked write)
	}
	if started {
		<-s.done
		<-s.sent
	}
}

// loop connects, subscribes to every channel waited on, and hands out
// messages until the connection fails; then, after a back-off, it
// connects again (C2).
func (s *subscriber) loop() {
	defer close(s.done)
	backoff := minBackoff
	for {
		ctx, cancel := context.WithTimeout(s.ctx, time.Second)
		conn, err := s.d.Dial(ctx)
		cancel()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			if err == nil {
				conn.Close()
			}
			return
		}
		if err == nil {
			s.conn, s.lastSeen, s.confirmed = conn, time.Now(), false
			names := make([]any, 0, len(s.chans)+1)
			names = append(names, "SUBSCRIBE")
			for ch := range s.chans {
				names = append(names, ch)
			}
			if len(names) > 1 {
				s.queueLocked(names...)
			}
			s.armPingerLocked()
			s.mu.Unlock()
			s.receive(conn)
			s.mu.Lock()
			if s.confirmed {
				backoff = minBackoff // it worked: a later failure starts over
			}
			s.conn, s.pending = nil, nil
			s.mu.Unlock()
			conn.Close()
		} else {
			s.mu.Unlock()
		}
		select { // the back-off, after every failure; Close interrupts it
		case <-time.After(backoff):
		case <-s.stop:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// receive hands out messages until the connection fails or the node
// answers with an error (a refused SUBSCRIBE).
func (s *subscriber) receive(conn redis.Conn) {
	psc := redis.PubSubConn{Conn: conn}
	for {
		// No read deadline: a subscription is silent between releases.
		// The pinger closes the connection if the node stops answering.
		switch v := psc.ReceiveWithTimeout(0).(type) {
		case redis.Message:
			s.notify(v.Channel, v.Data)
		case redis.Subscription:
			s.mu.Lock()
			s.lastSeen = time.Now()
			first := v.Kind == "subscribe" && !s.confirmed
			s.confirmed = s.confirmed || v.Kind == "subscribe"
			s.mu.Unlock()
			if first {
				// Listening now: releases may have been missed while
				// disconnected, so every waiter tries once more.
				s.wakeAll()
			}
		case redis.Pong:
			s.mu.Lock()
			s.lastSeen = time.Now()
			s.mu.Unlock()
		case error:
			return
		}
	}
}

// armPingerLocked schedules the next liveness check.
func (s *subscriber) armPingerLocked() {
	if s.pinger != nil {
		s.pinger.Stop()
	}
	s.pinger = time.AfterFunc(pingEvery, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || s.conn == nil {
			return
		}
		if len(s.chans) == 0 || !s.confirmed {
			// Not subscribed: PING would answer +PONG outside pub/sub
			// mode, which the subscription reader cannot take. Nothing
			// to lose while nobody waits; check again later.
			s.lastSeen = time.Now()
			s.armPingerLocked()
			return
		}
		if time.Since(s.lastSeen) > 3*pingEvery {
			s.conn.Close() // the receiving goroutine sees it and reconnects
			return
		}
		s.queueLocked("PING")
		s.armPingerLocked()
	})
}

func (s *subscriber) notify(channel string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for bell := range s.chans[channel] {
		bell.announced(s.node, payload)
	}
}

func (s *subscriber) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.chans {
		for bell := range set {
			bell.ring()
		}
	}
}
