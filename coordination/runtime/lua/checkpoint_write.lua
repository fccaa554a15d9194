-- A lease holder's write to the checkpoint of the todo it runs.
-- KEYS[1] = checkpoint hash, KEYS[2] = the writer's lease key
-- ARGV[1] = token, ARGV[2] = fence, ARGV[3..] = field, JSON value pairs
-- Returns 'ok', or why it was rejected: 'missing' | 'fence' | 'lease' | 'token'.
--
-- Race closed: a holder paused (GC, SIGSTOP, a slow disk) past its TTL wakes up
-- believing it still holds the lease; by then another worker took the todo over
-- with a higher fence and its own token. Each of the three checks below alone
-- rejects that late write, and they are made at the instant of the write.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local fence = tonumber(ARGV[2])
local stored = tonumber(jget(KEYS[1], 'fence') or 0) or 0
if fence < stored then return 'fence' end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lease' end
if jget(KEYS[1], 'token') ~= ARGV[1] then return 'token' end
hset_from(KEYS[1], 3)
return 'ok'
