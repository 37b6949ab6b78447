-- extend: set a new TTL only if the key still holds our value (ALGORITHM.md E2).
-- KEYS[1] lock key L; ARGV[1] value v, ARGV[2] new TTL in ms.
-- Returns 1 when extended, 0 when the key is gone or holds another value. It
-- never re-creates a missing key.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
