package redlock

import (
	_ "embed"

	"github.com/gomodule/redigo/redis"
)

var (
	//go:embed acquire.lua
	acquireSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed extend.lua
	extendSrc string
	//go:embed fence.lua
	fenceSrc string

	// The scripts run by EVALSHA, falling back to EVAL (which loads them)
	// when a node answers NOSCRIPT, so a warm node costs one round trip.
	acquireScript = redis.NewScript(2, acquireSrc)
	releaseScript = redis.NewScript(1, releaseSrc)
	extendScript  = redis.NewScript(1, extendSrc)
	fenceScript   = redis.NewScript(2, fenceSrc)
)

// The scripts' hashes as EVALSHA arguments, converted once.
var (
	acquireHash any = acquireScript.Hash()
	releaseHash any = releaseScript.Hash()
	extendHash  any = extendScript.Hash()
	fenceHash   any = fenceScript.Hash()
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

// CounterKey returns the Redis key of the fencing counter of lock name:
// LockKey(name) + ":fence". It has no TTL and is never deleted (ALGORITHM.md F).
func CounterKey(name string) string { return LockKey(name) + ":fence" }
