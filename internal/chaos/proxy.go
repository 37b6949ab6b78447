package chaos

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Gate is a switch that proxies consult for every chunk they forward: a
// node's (a partition, added latency) or a client's (a freeze). One gate
// can stand in front of many proxies, ones made later included: a node's
// gate holds for every client that reaches the node, a client's for every
// node it reaches. The zero Gate is open.
type Gate struct {
	mu    sync.Mutex
	delay time.Duration
	cut   bool
}

// SetDelay delays every chunk a client sends through the gate by d (0
// removes it).
func (g *Gate) SetDelay(d time.Duration) {
	g.mu.Lock()
	g.delay = d
	g.mu.Unlock()
}

// Cut stops all traffic through the gate, both ways, sockets left open:
// what either side sends is dropped, and a connection that lost anything
// is closed at its next chunk once the gate is mended (see Proxy). Mend
// ends it.
func (g *Gate) Cut() { g.setCut(true) }

// Mend ends a Cut.
func (g *Gate) Mend() { g.setCut(false) }

func (g *Gate) setCut(v bool) {
	g.mu.Lock()
	g.cut = v
	g.mu.Unlock()
}

func (g *Gate) state() (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.delay, g.cut
}

// Link is what a partition or latency fault acts on: a Proxy, or a Gate
// that many proxies consult.
type Link interface {
	Cut()
	Mend()
	SetDelay(time.Duration)
}

// Proxy forwards TCP connections from a loopback port to one node, and can
// slow or cut them: it is how the process tier adds latency to a node and
// partitions it (the Docker tier partitions with the network itself), and
// how the contention workload freezes and crashes a client.
//
// A cut drops bytes, but never inside a connection that goes on: TCP does
// not lose bytes in a connection that survives, and a pipelined client
// whose request was dropped would take the reply to its next request for
// the reply to the lost one. So a connection that lost a chunk either way
// forwards nothing more, and is closed at its next chunk (or when its
// client gives up on it): a connection reset once the partition heals.
type Proxy struct {
	ln     net.Listener
	target string
	gates  []*Gate // gates[0] is the proxy's own (Cut, Mend, SetDelay)

	dead atomic.Bool  // Kill was called
	wmu  sync.RWMutex // held for reading by every forwarding write; Kill waits them out

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to target, subject
// to its own gate and to gates.
func NewProxy(target string, gates ...*Gate) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, gates: append([]*Gate{{}}, gates...)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients dial instead of the node's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay delays every chunk the client sends by d (0 removes it).
func (p *Proxy) SetDelay(d time.Duration) { p.gates[0].SetDelay(d) }

// Cut partitions the node: from now on, what either side sends is dropped,
// so requests time out as they would behind a broken network; Mend ends it.
func (p *Proxy) Cut() { p.gates[0].Cut() }

// Mend ends a partition.
func (p *Proxy) Mend() { p.gates[0].Mend() }

// Kill is the crash of the client behind the proxy: every connection is
// closed at once, and from then on every new one is closed as soon as it is
// accepted (the port stays bound, so no later listener can take it and
// carry the dead client's traffic). Once Kill returns, nothing more reaches
// the node through this proxy.
func (p *Proxy) Kill() {
	p.dead.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		c.Close() // also ends a write blocked on a full socket
	}
	p.mu.Unlock()
	p.wmu.Lock() // a write that began before the flag was set is over
	p.wmu.Unlock()
}

// state combines the gates: the delays add up, and any cut cuts.
func (p *Proxy) state() (delay time.Duration, cut bool) {
	for _, g := range p.gates {
		d, c := g.state()
		delay += d
		cut = cut || c
	}
	return delay, cut
}

// Close stops listening, closes every connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.dead.Load() {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			if p.dead.Load() {
				continue // killed: refuse it, keep the port
			}
			return
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return // the node is down: the client sees its connection closed
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	var holed atomic.Bool // a chunk was dropped, either way
	done := make(chan struct{}, 2)
	go func() { p.pump(server, client, false, &holed); done <- struct{}{} }()
	p.pump(client, server, true, &holed)
	client.Close()
	server.Close()
	<-done
}

// pump copies src to dst (fromServer: the node's replies to the client),
// delaying client-sent chunks, dropping everything while cut, and ending
// the connection at the first chunk after a drop.
func (p *Proxy) pump(dst, src net.Conn, fromServer bool, holed *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			delay, cut := p.state()
			if !fromServer && delay > 0 && !cut {
				time.Sleep(delay)
				_, cut = p.state()
			}
			switch {
			case cut:
				holed.Store(true)
			case holed.Load(): // a hole behind it: reset, as TCP would have
				src.Close()
				dst.Close()
				return
			case !p.write(dst, buf[:n]):
				return
			}
		}
		if err != nil { // one side ended: end the other, as a dropped connection would
			dst.Close()
			return
		}
	}
}

// write forwards b unless the proxy was killed.
func (p *Proxy) write(dst net.Conn, b []byte) bool {
	p.wmu.RLock()
	defer p.wmu.RUnlock()
	if p.dead.Load() {
		dst.Close()
		return false
	}
	_, err := dst.Write(b)
	return err == nil
}
