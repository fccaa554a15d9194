-- Set one shared-context value (coord context set), making room first by evicting the
-- scope's least recently used keys when it holds its cap of keys.
-- KEYS[1] = the scope's LRU (Keys.context_lru), KEYS[2] = the value (Keys.context_value),
-- KEYS[3] = the scope's use counter (Keys.context_clock), KEYS[4] = the stats hash
-- (Keys.context_stats). ARGV[1] = the key, ARGV[2] = the record (JSON, sealed by the
-- writer), ARGV[3] = TTL (ms; 0: none), ARGV[4] = the cap (keys per scope), ARGV[5] =
-- the prefix of the scope's values (Keys.context_value_prefix: a victim's key is only
-- known here), ARGV[6] = the stats field counting evictions (evictions:<kind>).
-- Returns the keys evicted, least recently used first.
--
-- Race closed: two writers of new keys at a full scope. Each one's count, choice of
-- victims and write are one step, so the scope never holds more than its cap, each
-- victim is evicted (and counted) once, and a key a reader touched (context_get.lua)
-- is never chosen over one used before it. A key that expired by its TTL still sits
-- in the LRU until then: at the cap, those are dropped first, uncounted (they left by
-- their TTL, not by eviction).
local lru, vkey, clock, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, record, ttl, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, field = ARGV[5], ARGV[6]
local evicted = {}
if not redis.call('ZSCORE', lru, name) and redis.call('ZCARD', lru) >= cap then
  for _, k in ipairs(redis.call('ZRANGE', lru, 0, -1)) do
    if redis.call('EXISTS', prefix .. k) == 0 then
      redis.call('ZREM', lru, k)
    end
  end
  while redis.call('ZCARD', lru) >= cap do
    local oldest = redis.call('ZRANGE', lru, 0, 0)[1]
    redis.call('ZREM', lru, oldest)
    redis.call('DEL', prefix .. oldest)
    evicted[#evicted + 1] = oldest
  end
end
redis.call('ZADD', lru, redis.call('INCR', clock), name)
if ttl > 0 then
  redis.call('SET', vkey, record, 'PX', ttl)
else
  redis.call('SET', vkey, record)
end
if #evicted > 0 then
  redis.call('HINCRBY', stats, field, #evicted)
end
return evicted
