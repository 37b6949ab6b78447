-- line: a waiter's attempt, its undo, or its leaving the line (ALGORITHM.md L1-L8).
-- KEYS[1] lock key L, KEYS[2] line of waiters, KEYS[3] fencing counter C
-- (one hash slot). ARGV[1] 'take' or 'leave', ARGV[2] waiter id.
-- take: ARGV[3] value v, ARGV[4] TTL in ms, ARGV[5] ticket, ARGV[6] entry
--   lifetime in ms, ARGV[7] '1' to fence. The waiter (re)enters the line
--   with its ticket, for the entry lifetime (L3), and takes L when L is
--   reserved for it, or free with nobody ahead of it in line (L2): SET L v
--   PX ttl, and INCR C when fencing (F1). Returns 1, or the counter when
--   fencing, when granted; 0 when not. A grant takes its entry out of the
--   line here (L4: no leave is needed where it was granted); a lock taken
--   on too few nodes is undone, which puts the entry back, and reserved for
--   it again.
-- leave: ARGV[3] reservation ms; optionally ARGV[4] the id of the waiter
--   that takes its place (the next of the same client's waiters, L9),
--   ARGV[5] that one's ticket, ARGV[6] entry lifetime in ms. The entry is
--   removed (and the successor's put in); a reservation for this waiter
--   passes to the first in line (L4). Returns 1.
-- undo: a failed attempt's undo (A8). ARGV[3] value v, ARGV[4] the ticket
--   the waiter has from now on, ARGV[5] entry lifetime in ms, ARGV[6]
--   reservation ms. Only where L holds v: the entry takes the new ticket
--   (the back of the line, L7, when the waiter was given one), and L passes
--   to the first in line, or is deleted. Returns 1 when undone, 0 when L
--   did not hold v.
local id = ARGV[2]
if ARGV[1] == 'leave' then
  redis.pcall('HDEL', KEYS[2], id)
  if ARGV[4] then
    local now = now_ms()
    if now then
      enter(KEYS[2], ARGV[4], ARGV[5], tonumber(ARGV[6]), now)
    end
  end
  if redis.call('GET', KEYS[1]) == '~r:' .. id then
    hand(KEYS[1], KEYS[2], ARGV[3], true)
  end
  return 1
end
if ARGV[1] == 'undo' then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then
    return 0
  end
  local now = now_ms()
  if now then
    enter(KEYS[2], id, ARGV[4], tonumber(ARGV[5]), now)
  end
  hand(KEYS[1], KEYS[2], ARGV[6], false)
  return 1
end
-- (Re)enter the line first, granted or not: every node then holds every
-- live waiter, whether its key was free, held or reserved (L3, L6).
local now = now_ms()
if now then
  enter(KEYS[2], id, ARGV[5], tonumber(ARGV[6]), now)
end
local cur = redis.call('GET', KEYS[1])
local mine = cur == '~r:' .. id
if not mine and cur == false then
  -- First in line, or no line at all: none here, or none readable (L8).
  local h = head(KEYS[2])
  mine = h == nil or h == id
end
if mine then
  -- L4: served here, it leaves the line here, in the same step.
  redis.pcall('HDEL', KEYS[2], id)
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  if ARGV[7] == '1' then
    return redis.call('INCR', KEYS[3])
  end
  return 1
end
return 0
