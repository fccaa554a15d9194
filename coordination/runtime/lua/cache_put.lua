-- Store a successful run under its cache key and note the key in its todo's list of
-- recent keys, in one step.
-- KEYS[1] = the entry (Keys.cache_entry), KEYS[2] = the todo's recent keys
-- (Keys.cache_recent). ARGV[1] = the entry (JSON), ARGV[2] = the key, ARGV[3] =
-- retention (ms), ARGV[4] = how many recent keys a todo keeps.
-- Returns 1. The entry is stored as given: its seal (sig/kid, made by the writer with
-- COORD_SIGNING_KEY) is checked by whoever reads it, so this script never looks inside.
--
-- Races closed: two identical todos (same key) finishing at once. Each SET replaces
-- the whole value, so the entry is one run's or the other's, never a mix of both,
-- and both runs succeeded with that key, so either is right to reuse. The list is
-- written in the same step as the entry, so a reader never finds a key in the list
-- whose entry was never written (it may find one that expired: readers skip those),
-- and never an entry whose key a concurrent writer's LTRIM cut away before it was
-- pushed. The same key may be listed twice (two writers): readers keep the first.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
