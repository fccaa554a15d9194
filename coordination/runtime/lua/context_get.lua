-- Read one shared-context value (coord context get): a hit marks the key most recently
-- used and counts a hit; a miss (never set, deleted, expired, evicted) counts a miss
-- and drops an expired key's place in the LRU.
-- KEYS[1] = the scope's LRU (Keys.context_lru), KEYS[2] = the value (Keys.context_value),
-- KEYS[3] = the scope's use counter (Keys.context_clock), KEYS[4] = the stats hash
-- (Keys.context_stats). ARGV[1] = the key, ARGV[2] = the hits field (hits:<kind>),
-- ARGV[3] = the misses field (misses:<kind>).
-- Returns the record (JSON) or false.
--
-- Race closed: a read beside a writer evicting at a full scope. The read and its touch
-- are one step, so a value is either read and then last in line (not the next victim),
-- or evicted first and then a miss: never read, counted a hit, and evicted at once as
-- if it had not been used.
local lru, vkey, clock, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local record = redis.call('GET', vkey)
if not record then
  redis.call('ZREM', lru, ARGV[1])
  redis.call('HINCRBY', stats, ARGV[3], 1)
  return false
end
redis.call('ZADD', lru, redis.call('INCR', clock), ARGV[1])
redis.call('HINCRBY', stats, ARGV[2], 1)
return record
