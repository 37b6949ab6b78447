-- extend: prolong the key only if it still holds our value (ALGORITHM.md E2),
-- and never shorten it (E4): PEXPIRE GT sets the new TTL only when it ends
-- later than the key's current one, so no outcome of an Extend (a failed
-- one, one cut off by its deadline and applied late, one applied on a
-- minority) can move this node's expiry earlier.
-- KEYS[1] lock key L; ARGV[1] value v, ARGV[2] new TTL in ms.
-- Returns 1 when the key is ours (its expiry is now at least ARGV[2] ms
-- away), 0 when the key is gone or holds another value. It never
-- re-creates a missing key.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
  return 1
end
return 0
