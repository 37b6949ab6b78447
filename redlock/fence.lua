-- fence: the fencing write-back of Phase B (ALGORITHM.md F3).
-- KEYS[1] lock key L, KEYS[2] fencing counter key C (same hash slot)
-- ARGV[1] value v, ARGV[2] token t.
-- Only while L still holds our value: raise C to at least t. Returns 1 when
-- done (C >= t while we hold L here), 0 when the key is no longer ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local t = tonumber(ARGV[2])
local c = tonumber(redis.call('GET', KEYS[2]) or '0')
if c < t then
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
