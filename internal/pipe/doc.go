// Package pipe multiplexes the requests of many callers onto one pipelined
// connection per Redis node.
//
// Each Node has a writer goroutine and, per connection, a reader goroutine.
// Callers enqueue requests without blocking; the writer sends everything
// queued with redigo's Send and one Flush (one write for many callers), and
// the reader reads the replies in order and hands each to its Handler.
// Every request carries a hard deadline (ALGORITHM.md A3): the reader reads
// its reply with that deadline on the connection itself, and a reply that
// does not arrive by then kills the connection and fails everything in
// flight on it. So a frozen node costs each request at most its deadline,
// and nothing piles up behind it: no goroutine per request, and at most the
// requests of one deadline in flight.
//
// A caller with nothing else to wait for (Call) writes its request on an
// idle connection and reads the reply itself, with the same deadline: one
// goroutine hand-off less each way. The reader reads what was written
// behind it once its reply is in.
//
// Requests to one node run in the order they were enqueued, on one
// connection: a release enqueued after an acquisition runs after it, even
// when the acquisition's reply has not come back yet.
//
// This package is internal: its API may change at any time.
package pipe
