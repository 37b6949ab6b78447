-- line_head: shared by the scripts that read the line of waiters (ALGORITHM.md L1-L4);
-- prepended to release.lua and line.lua when they are loaded.
-- The line of lock name is one hash LINE: field = waiter id, value =
-- "ticket:expiry", the ticket being the waiter's place (the same on every
-- node, L1) and the expiry this node's time in ms after which the entry
-- counts for nothing (L3). live(LINE, G) drops the expired entries, and
-- their values in the line's grants G when G is given (L12), and returns
-- the others; head(LINE, G) returns the id with the smallest (ticket, id)
-- among them, or nil.
-- Every command on the line goes through pcall: an ACL user without the
-- rights to it (HGETALL, HSET, HDEL, TIME) gets plain Redlock, with no
-- line, instead of failing (L8).
local function now_ms()
  local t = redis.pcall('TIME')
  if t.err then
    return nil
  end
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- live returns the line's live entries, unordered, as {id, ticket} pairs,
-- and drops the expired ones (from grants too, when given); nil when the
-- line cannot be read (L8).
local function live(line, grants)
  local all = redis.pcall('HGETALL', line)
  if all.err then
    return nil
  end
  if #all == 0 then
    return {}
  end
  local now = now_ms()
  if not now then
    return nil
  end
  local out = {}
  for i = 1, #all, 2 do
    local id, v = all[i], all[i + 1]
    local sep = string.find(v, ':', 1, true)
    if tonumber(string.sub(v, sep + 1)) <= now then
      redis.pcall('HDEL', line, id)
      if grants then
        redis.pcall('HDEL', grants, id)
      end
    else
      out[#out + 1] = {id, tonumber(string.sub(v, 1, sep - 1))}
    end
  end
  return out
end
-- before orders entries by (ticket, id), the same order on every node (L1).
local function before(a, b)
  return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1])
end
local function head(line, grants)
  local best
  for _, e in ipairs(live(line, grants) or {}) do
    if best == nil or before(e, best) then
      best = e
    end
  end
  return best and best[1]
end
-- enter puts waiter id in the line with ticket, for lifetime ms from now
-- (node time), and keeps the line's key alive at least twice that long,
-- never shortening it (other waiters may have set a longer lifetime) and
-- never leaving it without an expiry (L3).
local function enter(line, id, ticket, lifetime, now)
  redis.pcall('HSET', line, id, ticket .. ':' .. (now + lifetime))
  redis.pcall('PEXPIRE', line, 2 * lifetime, 'NX')
  redis.pcall('PEXPIRE', line, 2 * lifetime, 'GT')
end
-- channel returns the channel on which a reservation of K for waiter id is
-- announced: K..':released:'..cid, cid being the id up to its first '.'
-- (the id of its client's channel, L10), or the whole id when it has no
-- '.' (a waiter of an older client, which listens on its own channel).
local function channel(k, id)
  local dot = string.find(id, '.', 1, true)
  if dot then
    return k .. ':released:' .. string.sub(id, 1, dot - 1)
  end
  return k .. ':released:' .. id
end
-- hand gives the lock key L to the head of the line (L2, L12). When the
-- head registered an attempt in GRANTS (grants, field = its id, value =
-- "seq:lease:value", line.lua take), L becomes that value, for lease ms
-- (its own: it counts on it): the head holds the lock here without another
-- request, and claims it for its TTL (line.lua claim), which takes it out
-- of the line, once a quorum handed it over; the hand-over is announced as
-- its id, one space and seq on its client's channel. Its entry and G's
-- value stay until then (or until the entry expires, L3), so that its
-- next attempt takes the key as its own. Otherwise L
-- becomes a reservation that only the head can turn into its lock, for
-- reserve_ms, announced with its id (channel(L, id), L10; the other
-- waiters sleep on). With nobody in line it deletes L and announces '1' on
-- L..':released' to every waiter when announce is set. PUBLISH is
-- best-effort (R5). grants may be nil: reservations only.
-- self, when given, is the id of the waiter whose undo this is (A8): when
-- first in line it gets a reservation, not a hand-over, which its next
-- attempt takes and its leave passes on. Its later attempt, registered
-- here, may have won the lock elsewhere and been released already: a
-- hand-over of it would be counted and released by nobody (L12).
local function hand(lock, line, grants, reserve_ms, announce, self)
  local h = head(line, grants)
  local g = h and h ~= self and grants and redis.pcall('HGET', grants, h)
  if h then
    if type(g) == 'string' then
      local sep = string.find(g, ':', 1, true)
      local sep2 = sep and string.find(g, ':', sep + 1, true)
      -- A grant that cannot be written (a node out of memory refuses SET,
      -- never DEL) falls back to a plain release.
      if sep2 and not redis.pcall('SET', lock, string.sub(g, sep2 + 1), 'PX', string.sub(g, sep + 1, sep2 - 1)).err then
        redis.pcall('PUBLISH', channel(lock, h), h .. ' ' .. string.sub(g, 1, sep - 1))
        return
      end
    elseif not redis.pcall('SET', lock, '~r:' .. h, 'PX', reserve_ms).err then
      redis.pcall('PUBLISH', channel(lock, h), h)
      return
    end
  end
  redis.call('DEL', lock)
  if announce then
    redis.pcall('PUBLISH', lock .. ':released', '1')
  end
end
-- forget takes waiter id's entry out of the line and its attempt out of
-- grants (L4, L12).
local function forget(line, grants, id)
  redis.pcall('HDEL', line, id)
  redis.pcall('HDEL', grants, id)
end
-- pass_on passes lock, whose value is cur, to the first in line once
-- waiter id has left it: a reservation for id (announced), or a free key
-- (L12: the waiters wait to be handed the lock, not for a key that lapsed;
-- silent when nobody is in line).
local function pass_on(lock, line, grants, reserve_ms, cur, id)
  if cur == '~r:' .. id then
    hand(lock, line, grants, reserve_ms, true)
  elseif cur == false then
    hand(lock, line, grants, reserve_ms, false)
  end
end
