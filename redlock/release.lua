-- release: delete the lock only if it still holds our value (ALGORITHM.md R1, R3).
-- KEYS[1] lock key L; ARGV[1] value v.
-- Returns 1 when deleted, 0 when the key is gone or holds another value
-- (another holder's key is never deleted).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
