-- release: delete the lock only if it still holds our value (ALGORITHM.md R1, R3).
-- KEYS[1] lock key L, KEYS[2] line of waiters, KEYS[3] its grants (same
-- hash slot);
-- ARGV[1] value v, ARGV[2] '1' to announce the release on the channel
-- L..':released' (waiters in Lock retry at once instead of polling), '0' to
-- announce nothing (a failed attempt undoing its partial grants: nobody held
-- the lock, and waking every waiter would stir contention); ARGV[3] how long
-- a reservation for the next in line lasts, in ms.
-- When waiters are in line, L is not deleted but granted to the first of
-- them for a moment, or reserved for it, and that one is told (L2, L12);
-- that is announced in either case.
-- ARGV[4], optionally: the id of the waiter that took this lock in line.
-- Its entry (and attempt in G) leaves the line here first (L4, L12): its
-- leave is sent once every node answered, and this release can come
-- first, on a node where the key was handed over to that very attempt,
-- or is handed over to it later; a free key, or one reserved for that
-- waiter (by the undo of an earlier attempt of its, come late), then
-- passes on too, as in a leave.
-- Returns 1 when released, 0 when the key is gone or holds another value
-- (another holder's key is never touched, and nothing is announced).
-- The announcement is best-effort (R5): pcall keeps a refused PUBLISH (an
-- ACL user without channel rights) from failing a release that is done.
if ARGV[4] then
  forget(KEYS[2], KEYS[3], ARGV[4])
end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  hand(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[2] == '1')
  return 1
end
if ARGV[4] then
  pass_on(KEYS[1], KEYS[2], KEYS[3], ARGV[3], cur, ARGV[4])
end
return 0
