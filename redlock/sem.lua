-- sem: a semaphore's permits on this node (ALGORITHM.md S1-S6); line_head.lua
-- is prepended when it is loaded. A permit is an ordinary lock (A1-A10) on
-- one of K slot keys; this script picks the slot, keeps the semaphore's
-- line of waiters (as line.lua does for a lock, L1-L4) and hands a freed
-- slot to the first waiter in line that holds no reservation here.
-- KEYS[1] the semaphore's line, KEYS[2] its fencing counter C, KEYS[3] to
-- KEYS[K+2] its K slot keys (one hash slot). ARGV[1] the operation.
-- take: ARGV[2] waiter id ('' for an attempt outside the line), ARGV[3]
--   value v, ARGV[4] TTL in ms, ARGV[5] ticket, ARGV[6] entry lifetime in
--   ms, ARGV[7] '1' to fence, ARGV[8] the preferred slot (0-based, -1 for
--   none), ARGV[9] reservation ms. A waiter (re)enters the line (L3). The
--   slot taken is the preferred one if it is reserved for this waiter or
--   free, else the one reserved for it, else the lowest free one; a free
--   slot only when fewer waiters without a reservation stand ahead of it
--   than there are free slots (S4; an attempt outside the line counts every
--   waiter as ahead). SET slot v PX ttl, INCR C when fencing (F1, S5).
--   Returns {slot, 1 or the counter} when granted, 0 when not.
-- release: ARGV[2] value v, ARGV[3] the only slot to look at (-1: all),
--   ARGV[4] a slot to keep (-1: none), ARGV[5] reservation ms, '0' for
--   none; optionally ARGV[6] a waiter id, ARGV[7] its ticket, ARGV[8] entry
--   lifetime in ms: its entry takes that ticket first (L7). Every slot
--   holding v (but the kept one) passes to the next in line (a permit's
--   Unlock, R1), or with '0' is deleted (an attempt's give-back, A8, S2).
--   Returns 1 when a slot held v, 0 when none did (R3).
-- leave: ARGV[2] waiter id, ARGV[3] reservation ms, ARGV[4] the value v of
--   its last attempt ('' for none), ARGV[5] the slot it keeps (-1: none);
--   optionally ARGV[6] the id of its successor (L9), ARGV[7] that one's
--   ticket, ARGV[8] entry lifetime in ms. The entry is removed (and the
--   successor's put in); its reservations pass to the next in line (L4),
--   and the slots holding v but the kept one are deleted (S2). Returns 1.
local line = KEYS[1]
local K = #KEYS - 2
local function slot(i)
  return KEYS[i + 2]
end
-- reserved returns the set of waiters holding a reservation here.
local function reserved()
  local r = {}
  for i = 1, K do
    local v = redis.call('GET', slot(i))
    if v and string.sub(v, 1, 3) == '~r:' then
      r[string.sub(v, 4)] = true
    end
  end
  return r
end
-- pass gives slot i to the first live waiter, other than skip, with no
-- reservation here (one reservation per waiter and node, S4), announced
-- with its id on its client's channel of the slot (L10); with nobody such,
-- or no memory for the reservation, it deletes the slot. PUBLISH is
-- best-effort (R5).
local function pass(i, reserve_ms, skip)
  local entries = live(line) or {}
  table.sort(entries, before)
  local held = reserved()
  for _, e in ipairs(entries) do
    local id = e[1]
    if id ~= skip and not held[id] then
      if not redis.pcall('SET', slot(i), '~r:' .. id, 'PX', reserve_ms).err then
        redis.pcall('PUBLISH', channel(slot(i), id), id)
        return
      end
      break
    end
  end
  redis.call('DEL', slot(i))
end
-- enter_from puts waiter ARGV[i] in line with ticket ARGV[i+1] for
-- ARGV[i+2] ms, when the caller passed one.
local function enter_from(i)
  local now = ARGV[i] and now_ms()
  if now then
    enter(line, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), now)
  end
end
local op = ARGV[1]
if op == 'release' then
  enter_from(6)
  local only, keep, found = tonumber(ARGV[3]) + 1, tonumber(ARGV[4]) + 1, 0
  for i = 1, K do
    if (only == 0 or only == i) and redis.call('GET', slot(i)) == ARGV[2] then
      found = 1
      if i == keep then
        found = 1
      elseif ARGV[5] == '0' then
        redis.call('DEL', slot(i))
      else
        pass(i, ARGV[5], '')
      end
    end
  end
  return found
end
if op == 'leave' then
  local id = ARGV[2]
  redis.pcall('HDEL', line, id)
  enter_from(6)
  local keep = tonumber(ARGV[5]) + 1
  for i = 1, K do
    local x = redis.call('GET', slot(i))
    if x == '~r:' .. id then
      pass(i, ARGV[3], id)
    elseif ARGV[4] ~= '' and x == ARGV[4] and i ~= keep then
      redis.call('DEL', slot(i))
    end
  end
  return 1
end
-- take
local id = ARGV[2]
local now = now_ms()
if id ~= '' and now then
  enter(line, id, ARGV[5], tonumber(ARGV[6]), now)
end
local vals, free, mine, held = {}, 0, nil, {}
for i = 1, K do
  local x = redis.call('GET', slot(i))
  vals[i] = x
  if not x then
    free = free + 1
  elseif string.sub(x, 1, 3) == '~r:' then
    local who = string.sub(x, 4)
    held[who] = true
    if id ~= '' and who == id and not mine then
      mine = i
    end
  end
end
-- S4: the free slots go to the first waiters in line without a
-- reservation, in order; this one may take one only if fewer of them
-- stand ahead of it than there are free slots.
local ahead = 0
if free > 0 then
  local entries = live(line) or {}
  local me
  for _, e in ipairs(entries) do
    if e[1] == id then
      me = e
    end
  end
  for _, e in ipairs(entries) do
    if e[1] ~= id and not held[e[1]] and (me == nil or before(e, me)) then
      ahead = ahead + 1
    end
  end
end
local may_free = ahead < free
local p = tonumber(ARGV[8]) + 1
local pick
if p >= 1 and p <= K and ((not vals[p] and may_free) or (mine == p)) then
  pick = p
elseif mine then
  pick = mine
elseif may_free then
  for i = 1, K do
    if not vals[i] then
      pick = i
      break
    end
  end
end
if not pick then
  return 0
end
if mine and mine ~= pick then
  pass(mine, ARGV[9], id) -- one slot per waiter: the other reservation goes on
end
redis.call('SET', slot(pick), ARGV[3], 'PX', ARGV[4])
local n = 1
if ARGV[7] == '1' then
  n = redis.call('INCR', KEYS[2])
end
return {pick - 1, n}
