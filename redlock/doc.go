// Package redlock is a distributed lock over N independent Redis masters:
// the Redlock algorithm, with quorum early return and hard per-node
// deadlines.
//
// # The algorithm
//
// TryLock writes a fresh random value with SET NX PX (Redis 7: with GET, so
// that a key of another type is an error, not a refusal) to all N nodes in
// parallel, each request bounded by the node timeout tau. The lock is held
// when Q = N/2+1 nodes granted it and time is left: the holder may assume it
// holds the lock until Until() = T1 + TTL - D, where T1 is when the first
// request was written (monotonic clock) and D = TTL*drift + 2ms covers clock
// drift. The call returns as soon as the outcome is known: at Q grants, or
// once N-Q+1 nodes refused or failed, so a frozen node never delays it. A
// failed attempt releases its value on every node where it may have been
// applied, in the background. Lock retries after a jittered pause. Extend
// prolongs the key only where it still holds this lock's value, and Unlock
// deletes it only there. The rules are numbered in ALGORITHM.md (A1-A10,
// H1, E1-E5, R1-R4); the tests name the rule they prove.
//
// # Connections
//
// A Client keeps one pipelined connection per node (taken from its pool):
// the requests of all concurrent callers to a node share one write and one
// read, and run in order, so a release always runs after the acquisition it
// undoes. Every request has the node timeout as a hard deadline on the
// connection; a node that misses it has its connection closed and replaced,
// so a frozen node holds back nothing. Close the Client before its pools.
//
// # Waiting
//
// Lock callers that find the lock held wait in one line per name, kept on
// every node and shared by all clients (ALGORITHM.md L1-L6): a release
// reserves the lock for the first in line and names it on its client's
// channel of the name, to which the client subscribes while one of its
// waiters waits, and for a linger after (one connection per node, shared;
// L10); the waiter then takes the lock with one round trip, which takes it
// out of the line on the nodes that grant it (L4). A Lock call on a name
// the client waited for a moment ago joins the line at once (L11).
// Waiters are served in arrival order and never split a quorum among
// themselves. A waiter attempts every node timeout to keep its place; one
// that stops leaves the line by itself within a few node timeouts. The line
// only ever withholds a grant, never gives one: exclusion still rests on Q
// grants within the validity (A7). TryLock does not wait in line.
//
// # Holding
//
// A Lock's Done channel closes when the holder may no longer assume it holds
// the lock: at Until() unless extended, on Unlock, when auto-extension
// (WithAutoExtend) gives up, or when the nodes say the key is gone (H2). Do
// runs a function under the lock with auto-extension and cancels its
// context, with ErrLockLost as the cause, at that moment. WithMaxHold caps
// how long auto-extension may keep a lock. One scheduler per client extends
// every auto-extended lock when due: a held lock costs memory, not a
// goroutine, and extensions due together share each node's writes.
//
// # Fencing
//
// With WithFencing, the acquire script also increments a per-name counter
// that is never deleted; the token is the largest counter among the grants,
// written back to the granting nodes that are behind while they still hold
// our key (F1-F3). Any two successful acquisitions share a node, so a later
// token is strictly larger (F4). The resource must check the token on every
// access (F5).
//
// # Who holds a lock
//
// Every acquisition writes who takes the lock (host, process id, the
// attempt's wall-clock time, and the label of WithHolder) into the lock's
// value, after the random secret, so the record is written and expires
// with the lock on every node (ALGORITHM.md M1). Holder reads it from each
// node with the quorum's verdict, never the secret (M2). ForceUnlock is the
// operator's break-glass: it removes the lock whoever holds it, and the
// holder is not told (M3).
//
// # Leader election
//
// An Election (Client.Election) is a lock with a published holder: the
// leadership of election NAME is the lock "election:NAME", which Campaign
// takes with fencing and auto-extension, waiting in line until its context
// ends; the term is the fencing token, so every later leader has a greater
// one (ALGORITHM.md V1, V2). The new leader writes its value and term on
// the nodes next to the lock's key, only where the key holds its lock
// value, and Campaign returns once a quorum holds them (V3). Leader reports
// what a quorum of nodes reports, each node only while the key still holds
// the value the record names (V4), and never an older term than it already
// returned (V5); Observe follows the changes in term order without ever
// waiting for its receiver (V6).
//
// # What is guaranteed
//
// While at most N-Q nodes are crashed, frozen, cut off or slow, and clocks
// drift less than the drift factor: no two holders overlap before their
// Until(); a release never deletes another holder's key; every call ends
// within its context and a bounded number of node timeouts; and a lock can
// be taken while a majority is healthy.
//
// # What is not
//
// The lock is a lease: a holder that pauses (GC, swap, a stopped VM) past
// Until() and then acts may overlap with the next holder, and no lock
// service can prevent that alone. Fencing tokens (Lock.Token), checked by
// the protected resource on every access, are the protection. A node whose
// clock jumps forward expires keys early, and a node restarted at once
// without its data forgets the lock; both break mutual exclusion.
//
// A request cut off by its deadline may still run on its node later (a
// frozen node runs what was queued when it wakes): a failed attempt's or an
// Unlock's delete can then run before it, and that node keeps the key until
// its TTL. This costs availability on that node, never safety.
//
// # Deployment rules
//
//   - N1: independent masters: no replicas, no failover between them.
//   - N2: a crashed node comes back with its data (appendonly yes,
//     appendfsync always) or only after the longest TTL in use.
//   - N3: maxmemory-policy noeviction: an evicted lock key is an early release.
//   - N4: clocks slew, never jump.
package redlock
