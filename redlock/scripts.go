package redlock

import (
	_ "embed"

	"github.com/gomodule/redigo/redis"
)

var (
	//go:embed acquire.lua
	acquireSrc string
	//go:embed line_head.lua
	lineHeadSrc string
	//go:embed release.lua
	releaseBody string
	//go:embed line.lua
	lineBody string
	//go:embed sem.lua
	semBody string
	// The scripts that read the line start with its shared functions.
	releaseSrc = lineHeadSrc + releaseBody
	lineSrc    = lineHeadSrc + lineBody
	semSrc     = lineHeadSrc + semBody
	//go:embed extend.lua
	extendSrc string
	//go:embed fence.lua
	fenceSrc string
	//go:embed holder.lua
	holderSrc string // run with EVAL: an operator's read, not worth a slot in every connection's scripts
	//go:embed force.lua
	forceBody string
	forceSrc  = lineHeadSrc + forceBody // EVAL too: break-glass, rare
	//go:embed elect.lua
	electSrc string

	// The scripts run by EVALSHA, falling back to EVAL (which loads them)
	// when a node answers NOSCRIPT, so a warm node costs one round trip.
	acquireScript = redis.NewScript(2, acquireSrc)
	releaseScript = redis.NewScript(3, releaseSrc)
	lineScript    = redis.NewScript(4, lineSrc)
	extendScript  = redis.NewScript(1, extendSrc)
	fenceScript   = redis.NewScript(2, fenceSrc)
	electScript   = redis.NewScript(2, electSrc)
	semScript     = redis.NewScript(-1, semSrc) // 2 + K keys: the caller counts them
)

// The scripts' hashes as EVALSHA arguments, converted once.
var (
	acquireHash any = acquireScript.Hash()
	releaseHash any = releaseScript.Hash()
	lineHash    any = lineScript.Hash()
	extendHash  any = extendScript.Hash()
	fenceHash   any = fenceScript.Hash()
	electHash   any = electScript.Hash()
	semHash     any = semScript.Hash()
)

// releasedSuffix names the channel a release publishes on: LockKey(name) +
// releasedSuffix (release.lua builds the same name). Waiters in Lock
// subscribe to it to retry at once.
const releasedSuffix = ":released"

// KeyPrefix starts every key the library writes.
const KeyPrefix = "redlock:"

// LockKey returns the Redis key of lock name: "redlock:{name}". The braces
// make it a Redis Cluster hash tag, so the lock key and the fencing counter
// of one name share a slot (ALGORITHM.md F). Redis takes the tag up to the
// first "}", and both keys share that prefix, so they share a slot for
// every name that does not start with "}".
func LockKey(name string) string { return KeyPrefix + "{" + name + "}" }

// LineKey returns the Redis key of the line of waiters for lock name:
// LockKey(name) + ":line", a hash that exists only while someone waits and
// expires when nobody refreshes it (ALGORITHM.md L3).
func LineKey(name string) string { return LockKey(name) + ":line" }

// GrantsKey returns the Redis key of the values that the waiters in the line
// of lock name registered for a hand-over: LineKey(name) + ":grants", a hash
// (field = waiter id, value = "seq:lease:value") that lives as long as the line
// (ALGORITHM.md L12). It holds secrets: like the lock key, it is for the
// scripts only.
func GrantsKey(name string) string { return KeyPrefix + "{" + name + "}:line" + grantsSuffix } // one allocation

const grantsSuffix = ":grants"

// lineAndGrants returns LineKey(name) and GrantsKey(name) made as one string:
// a release needs both, and one allocation is enough.
func lineAndGrants(name string) (line, grants string) {
	grants = GrantsKey(name)
	return grants[:len(grants)-len(grantsSuffix)], grants
}

// CounterKey returns the Redis key of the fencing counter of lock name:
// LockKey(name) + ":fence". It has no TTL and is never deleted (ALGORITHM.md F).
func CounterKey(name string) string { return LockKey(name) + ":fence" }
