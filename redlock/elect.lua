-- elect: the leader record of an election (ALGORITHM.md V3, V4).
-- KEYS[1] the election's lock key L, KEYS[2] its leader record R (same hash
-- slot): a hash {term, fp, value}, fp being sha1hex of the leader's lock
-- value, so that R names the leadership without holding its secret (V8).
-- R has no TTL: a read checks it against L every time.
-- ARGV[1] 'publish' or 'read'.
-- publish: ARGV[2] the leader's lock value v, ARGV[3] its term t, ARGV[4]
--   its public value. Only while L holds v, and only over a record of a
--   lower term (or this same leadership's): R = {t, sha1hex(v), value},
--   then announced on the channel named R (best-effort, as R5). Returns 1
--   when R holds this leadership, 0 when not (L does not hold v, or R
--   holds a higher term or another leadership of term t).
-- read: returns {term, value} when R names the lock L holds now
--   (its value's sha1hex is R's fp), an empty array otherwise. It writes
--   nothing.
if ARGV[1] == 'read' then
  local rec = redis.call('HMGET', KEYS[2], 'term', 'fp', 'value')
  if not rec[1] then
    return {}
  end
  local cur = redis.call('GET', KEYS[1])
  if not cur or redis.sha1hex(cur) ~= rec[2] then
    return {}
  end
  return {rec[1], rec[3]}
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
local fp = redis.sha1hex(ARGV[2])
local t = tonumber(ARGV[3])
local old = redis.call('HMGET', KEYS[2], 'term', 'fp')
if old[1] then
  local ot = tonumber(old[1])
  if ot > t or (ot == t and old[2] ~= fp) then
    return 0
  end
end
redis.call('HSET', KEYS[2], 'term', ARGV[3], 'fp', fp, 'value', ARGV[4])
redis.pcall('PUBLISH', KEYS[2], '1')
return 1
