-- holder: read who holds lock L on this node, never its secret (ALGORITHM.md M2).
-- Read-only. KEYS[1] lock key L, KEYS[2] fencing counter C (same hash slot).
-- Returns {state, holder, pttl, fingerprint, counter}:
--   state: 'free' (no key), 'held' (a value with a holder part, M1),
--     'held-no-holder' (a value without one: a client of an earlier version, or
--     another program's), 'reserved' (for the first in line, L2), 'not-a-lock'
--     (not a string: no lock can be taken here);
--   holder: the holder part of a 'held' value (after the first space,
--     starting '{"h":'), else nil; the value's secret part never leaves
--     the node;
--   pttl: PTTL of L (-2 when free, -1 when it has no expiry);
--   fingerprint: the first 8 hex digits of SHA-1 of the whole value, equal
--     on the nodes holding one acquisition and useless to forge it; nil
--     unless the key is a string;
--   counter: C as a string, or nil (never fenced, or not readable).
local c = redis.pcall('GET', KEYS[2])
if type(c) ~= 'string' then
  c = false
end
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then
  return {'free', false, -2, false, c}
end
local pttl = redis.call('PTTL', KEYS[1])
if t ~= 'string' then
  return {'not-a-lock', false, pttl, false, c}
end
local v = redis.call('GET', KEYS[1])
local fp = string.sub(redis.sha1hex(v), 1, 8)
if string.sub(v, 1, 3) == '~r:' then
  return {'reserved', false, pttl, fp, c}
end
local sp = string.find(v, ' ', 1, true)
if sp and sp > 1 and string.sub(v, sp + 1, sp + 5) == '{"h":' then
  return {'held', string.sub(v, sp + 1), pttl, fp, c}
end
return {'held-no-holder', false, pttl, fp, c}
