// Package chaos proves mutual exclusion under faults: a workload of clients
// contending for a few lock names, a fenced resource that checks tokens on
// every access, a fault schedule driven by a printed seed, and checkers
// that read what happened.
//
// Holders record their hold interval [return of Lock, min(Unlock call,
// Until())] on the monotonic clock and write to the resource only before
// Until(). The checkers then require, for the in-model runs (never more
// than N-Q nodes faulty at once): no two hold intervals of one name overlap;
// tokens strictly increase in acquisition order and never repeat; the
// resource accepts no stale write; every call returns within its context;
// and acquisitions keep succeeding (liveness). Out-of-model runs (a
// majority down, a node restarted at once without its data) are reported,
// not failed.
//
// The contention workload (RunContention) is the line of waiters under
// fire (ALGORITHM.md L1-L6): many separate clients, each with its own pools
// behind its own proxies, contend for one name while the nodes suffer the
// same faults and the clients suffer their own: a waiter crashes (it never
// sends anything again; a fresh client takes its place) or freezes. Its
// checkers add liveness (no long drought while clients wait, no Lock call
// starved for its whole budget) and fairness (Jain's index over the
// clients that lived the whole run), and report the longest wait and what
// a stopped waiter cost the others.
//
// The semaphore workload (RunSemaphore) is the same fire on a semaphore
// (ALGORITHM.md S1-S5): more separate clients than permits, node faults,
// and the clients' views of the nodes split by link cuts; its checkers
// count the permits held at once (never more than K) and require each
// token to be above those of the permits acquired before its call began.
//
// The same workload drives `redlock demo`. This package is internal.
package chaos
