-- line: a waiter's attempt, its undo, its leaving the line, or its claim
-- of a lock handed over to it (ALGORITHM.md L1-L8, L12).
-- KEYS[1] lock key L, KEYS[2] line of waiters, KEYS[3] fencing counter C,
-- KEYS[4] the line's grants G (one hash slot). ARGV[1] 'take', 'undo',
-- 'leave' or 'claim', ARGV[2] waiter id.
-- take: ARGV[3] value v, ARGV[4] TTL in ms, ARGV[5] ticket, ARGV[6] entry
--   lifetime in ms, ARGV[7] '1' to fence, optionally ARGV[8] seq, the
--   number of this attempt among the waiter's, and ARGV[9] lease, in ms.
--   The waiter (re)enters the line with its ticket, for the entry lifetime
--   (L3), with "seq:lease:v" in G when seq is given and newer than the one
--   there (a release may then hand L over to it for lease ms, L12), and
--   takes L when L is reserved for it, handed over to an older attempt of
--   its own, or free with nobody ahead of it in line (L2): SET L v PX ttl, and
--   INCR C when fencing (F1). Returns 1, or the counter when fencing, when
--   granted; 0 when not. A grant takes its entry out of the line here (L4:
--   no leave is needed where it was granted); a lock taken on too few
--   nodes is undone, which puts the entry back, and reserved for it again.
-- leave: ARGV[3] reservation ms, ARGV[4] v: the waiter gave up, and L is
--   passed on where it holds v; '' after the waiter took the lock;
--   optionally ARGV[5] the id of the waiter that takes its place (the next
--   of the same client's waiters, L9), ARGV[6] that one's ticket, ARGV[7]
--   entry lifetime in ms. The entry is removed (and the successor's put
--   in); a reservation for this waiter passes to the first in line (L4),
--   and so does a free key (L12: the waiters in line wait to be handed
--   the lock, none takes a key that lapsed; unannounced when nobody is
--   in line). Returns 1.
-- undo: a failed attempt's undo (A8). ARGV[3] value v, ARGV[4] the ticket
--   the waiter has from now on, ARGV[5] entry lifetime in ms, ARGV[6]
--   reservation ms. Only where L holds v: the entry takes the new ticket
--   (the back of the line, L7, when the waiter was given one), and L
--   passes to the first in line (reserved, when that is the waiter
--   itself, L12), or is deleted. Returns 1 when undone, 0 when L did not
--   hold v.
-- claim: a lock handed over to the waiter on a quorum (L12). ARGV[3] v,
--   ARGV[4] TTL in ms, ARGV[5] reservation ms, optionally the successor as
--   leave's ARGV[5..7]. The entry is removed, as leave does; where L holds
--   v, it lasts TTL from now, never less than it had (PEXPIRE GT, E4);
--   where L is reserved for it, or free, L passes to the first in line,
--   as in leave. Returns 1 where L holds v, 0 elsewhere.
local id = ARGV[2]
-- out takes the waiter's entry out of the line, and puts its successor
-- (L9) in, from ARGV[first]: id, ticket, entry lifetime.
local function out(first)
  forget(KEYS[2], KEYS[4], id)
  if ARGV[first] then
    local now = now_ms()
    if now then
      enter(KEYS[2], ARGV[first], ARGV[first + 1], tonumber(ARGV[first + 2]), now)
    end
  end
end
-- register keeps the attempt's seq, lease and value in G, for a release to
-- hand L over with (L12), as long as the waiter's entry.
local function register(v, seq, lease, lifetime)
  if seq and lease then
    redis.pcall('HSET', KEYS[4], id, seq .. ':' .. lease .. ':' .. v)
    redis.pcall('PEXPIRE', KEYS[4], 2 * lifetime, 'NX')
    redis.pcall('PEXPIRE', KEYS[4], 2 * lifetime, 'GT')
  end
end
if ARGV[1] == 'leave' then
  out(5)
  local cur = redis.call('GET', KEYS[1])
  if ARGV[4] ~= '' and cur == ARGV[4] then
    hand(KEYS[1], KEYS[2], KEYS[4], ARGV[3], true)
  else
    pass_on(KEYS[1], KEYS[2], KEYS[4], ARGV[3], cur, id)
  end
  return 1
end
if ARGV[1] == 'claim' then
  out(6)
  local cur = redis.call('GET', KEYS[1])
  if cur == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[4], 'GT')
    return 1
  end
  pass_on(KEYS[1], KEYS[2], KEYS[4], ARGV[5], cur, id)
  return 0
end
if ARGV[1] == 'undo' then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then
    return 0
  end
  local now = now_ms()
  if now then
    enter(KEYS[2], id, ARGV[4], tonumber(ARGV[5]), now)
  end
  hand(KEYS[1], KEYS[2], KEYS[4], ARGV[6], false, id)
  return 1
end
-- The attempt the waiter registered before, and the value a release may
-- have handed over to it (L12): a newer attempt takes that key as its own
-- (the waiter counts hand-overs of its latest attempt only); an older one,
-- arriving late, neither takes it nor registers.
local seq = tonumber(ARGV[8])
local newer, handed = seq ~= nil, nil
local g = redis.pcall('HGET', KEYS[4], id)
if type(g) == 'string' then
  local sep = string.find(g, ':', 1, true)
  local sep2 = sep and string.find(g, ':', sep + 1, true)
  if sep2 then
    newer = seq ~= nil and seq > (tonumber(string.sub(g, 1, sep - 1)) or 0)
    handed = string.sub(g, sep2 + 1)
  end
end
-- (Re)enter the line first, granted or not: every node then holds every
-- live waiter, whether its key was free, held or reserved (L3, L6).
local now = now_ms()
if now then
  enter(KEYS[2], id, ARGV[5], tonumber(ARGV[6]), now)
  if newer then
    register(ARGV[3], ARGV[8], ARGV[9], tonumber(ARGV[6]))
  end
end
local cur = redis.call('GET', KEYS[1])
local mine = cur == '~r:' .. id or (newer and cur == handed)
if not mine and cur == false then
  -- First in line, or no line at all: none here, or none readable (L8).
  local h = head(KEYS[2], KEYS[4])
  mine = h == nil or h == id
end
if mine then
  -- L4: served here, it leaves the line here, in the same step.
  forget(KEYS[2], KEYS[4], id)
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  if ARGV[7] == '1' then
    return redis.call('INCR', KEYS[3])
  end
  return 1
end
return 0
