-- release: delete the lock only if it still holds our value (ALGORITHM.md R1, R3).
-- KEYS[1] lock key L; ARGV[1] value v, ARGV[2] '1' to announce the release
-- on the channel L..':released' (waiters in Lock retry at once instead of
-- polling), '0' to announce nothing (a failed attempt undoing its partial
-- grants: nobody held the lock, and waking the waiters would stir contention).
-- Returns 1 when deleted, 0 when the key is gone or holds another value
-- (another holder's key is never deleted, and nothing is announced).
-- The announcement is best-effort (R5): pcall keeps a refused PUBLISH (an
-- ACL user without channel rights) from failing a release that is done.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] == '1' then
    redis.pcall('PUBLISH', KEYS[1] .. ':released', '1')
  end
  return 1
end
return 0
