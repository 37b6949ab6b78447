-- acquire: take the lock on this node if it is free, and count it (ALGORITHM.md F1).
-- Used with fencing; without it, a plain SET NX PX GET does the same job.
-- KEYS[1] lock key L, KEYS[2] fencing counter key C (same hash slot)
-- ARGV[1] value v (random, unique per attempt), ARGV[2] TTL in ms,
-- ARGV[3] "1" to fence: INCR C on success and return it.
-- Returns 0 when the key is held (not granted); 1, or the counter when
-- fencing, when granted. A key of another type is an error (WRONGTYPE),
-- because SET NX alone would report it as merely held.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] == '1' then
    return redis.call('INCR', KEYS[2])
  end
  return 1
end
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
  return redis.error_reply('WRONGTYPE lock key holds a value that is not a string')
end
return 0
