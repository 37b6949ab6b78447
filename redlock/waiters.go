package redlock

import (
	"context"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/quorumlock/quorumlock/pool"
)

// waiters wakes Lock callers when a lock they wait for is released, instead
// of leaving them to poll: Unlock's script publishes on a channel per name
// (LockKey(name) + ":released"), and the client keeps one subscription
// connection per node, shared by all its waiters, subscribed only to the
// names someone waits for. Messages can be lost (a node down, a connection
// replaced): the jittered retry delay stays as the fallback, so liveness
// never depends on a message.
type waiters struct {
	subs []*subscriber // per node; nil where the pool cannot dial (no wake-ups there)
}

func newWaiters(pools []pool.Pool) *waiters {
	w := &waiters{subs: make([]*subscriber, len(pools))}
	for i, p := range pools {
		if d, ok := p.(pool.Dialer); ok {
			w.subs[i] = &subscriber{d: d, chans: map[string]map[chan struct{}]struct{}{}, done: make(chan struct{}), stop: make(chan struct{})}
		}
	}
	return w
}

// wait returns a channel that receives when name may have been released,
// and the function that stops waiting.
func (w *waiters) wait(name string) (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	channel := LockKey(name) + releasedSuffix
	for _, s := range w.subs {
		if s != nil {
			s.add(channel, ch)
		}
	}
	return ch, func() {
		for _, s := range w.subs {
			if s != nil {
				s.remove(channel, ch)
			}
		}
	}
}

func (w *waiters) close() {
	for _, s := range w.subs {
		if s != nil {
			s.close()
		}
	}
}

// pingEvery is how often an idle subscription checks that its node still
// answers; after three missed pongs the connection is replaced.
const pingEvery = 3 * time.Second

// subscriber is the subscription connection to one node. Its goroutine
// starts with the first waiter and lives until the client closes.
type subscriber struct {
	d pool.Dialer

	mu       sync.Mutex
	chans    map[string]map[chan struct{}]struct{}
	conn     redis.Conn // nil while disconnected
	started  bool
	closed   bool
	lastSeen time.Time
	pinger   *time.Timer
	done     chan struct{}
	stop     chan struct{} // closed by close
}

func (s *subscriber) add(channel string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if !s.started {
		s.started = true
		go s.loop()
	}
	set := s.chans[channel]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		s.chans[channel] = set
		s.sendLocked("SUBSCRIBE", channel)
	}
	set[ch] = struct{}{}
}

func (s *subscriber) remove(channel string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.chans[channel]
	delete(set, ch)
	if len(set) == 0 && set != nil {
		delete(s.chans, channel)
		s.sendLocked("UNSUBSCRIBE", channel)
	}
}

// sendLocked writes a command on the subscription, if connected; a failure
// shows up in the receiving goroutine, which reconnects.
func (s *subscriber) sendLocked(cmd string, args ...any) {
	if s.conn != nil && s.conn.Send(cmd, args...) == nil {
		s.conn.Flush()
	}
}

func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	close(s.stop)
	conn, started := s.conn, s.started
	if s.pinger != nil {
		s.pinger.Stop()
	}
	s.mu.Unlock()
	if conn != nil {
		conn.Close() // unblocks the receiving goroutine
	}
	if started {
		<-s.done
	}
}

// loop connects, subscribes to every channel waited on, and hands out
// messages until the connection fails; then it connects again.
func (s *subscriber) loop() {
	defer close(s.done)
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
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
		if err != nil {
			s.mu.Unlock()
			select { // the back-off; Close interrupts it
			case <-time.After(backoff):
			case <-s.stop:
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		s.conn, s.lastSeen = conn, time.Now()
		names := make([]any, 0, len(s.chans))
		for ch := range s.chans {
			names = append(names, ch)
		}
		if len(names) > 0 {
			s.sendLocked("SUBSCRIBE", names...)
		}
		s.armPingerLocked()
		s.mu.Unlock()
		s.wakeAll() // releases may have been missed while disconnected
		s.receive(conn)
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		conn.Close()
	}
}

func (s *subscriber) receive(conn redis.Conn) {
	psc := redis.PubSubConn{Conn: conn}
	for {
		// No read deadline: a subscription is silent between releases.
		// The pinger closes the connection if the node stops answering.
		switch v := psc.ReceiveWithTimeout(0).(type) {
		case redis.Message:
			s.notify(v.Channel)
		case redis.Pong, redis.Subscription:
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
		if len(s.chans) == 0 {
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
		s.sendLocked("PING")
		s.armPingerLocked()
	})
}

func (s *subscriber) notify(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.chans[channel] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *subscriber) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.chans {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
