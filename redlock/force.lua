-- force: an operator's break-glass (ALGORITHM.md M3): remove the lock on
-- this node whoever holds it. Prepended with line_head.lua.
-- KEYS[1] lock key L, KEYS[2] line of waiters (same hash slot);
-- ARGV[1] how long a reservation for the next in line lasts, in ms.
-- A lock value is handed on as a release does (R1's script, minus the
-- compare): reserved for the first in line, who is told, or deleted and
-- announced on L..':released' so that waiters retry at once (R5). A
-- reservation is left alone: it names a waiter, not a holder, and lapses
-- by itself. A key of another type is not a lock and is left alone. The
-- fencing counter and the line are never touched (F4, L3).
-- Returns 1 when a lock was removed, 0 when there was none.
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return 0
end
if string.sub(redis.call('GET', KEYS[1]), 1, 3) == '~r:' then
  return 0
end
hand(KEYS[1], KEYS[2], nil, ARGV[1], true)
return 1
