-- A running todo whose lease is gone (its worker died, froze or lost Redis):
-- put it back to 'queued' to be sent again, or, after too many such lost
-- runs, end it 'failed' as a poison todo.
-- KEYS[1] = checkpoint hash, KEYS[2] = sweep hash (its counters)
-- ARGV[1] = the holder's token as the caller saw it, ARGV[2] = lost-run limit
-- (0: none), ARGV[3] = now (JSON), ARGV[4] = why (raw text, for lost_reason),
-- ARGV[5] = the todo's level (-1: none; for the sweep's counters)
-- Returns 'requeued' | 'poisoned' (now failed) | 'held' | 'changed' | 'gone'.
--
-- Races closed: the holder renewing its lease, or finishing, between the
-- supervisor's read and this write (the lease and status are re-read here, so
-- a live holder is never taken for dead); two supervisors counting one lost
-- run twice (only the first sees 'running' with that token); and a poison
-- todo looping forever (the count and the verdict are one step). The lease
-- key is read from the checkpoint, not passed in KEYS (single Redis only, as
-- in checkpoint_claim).
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
if todo_known(jget(KEYS[1], 'status')) ~= TS.running then return 'changed' end
local token = jget(KEYS[1], 'token')
if token ~= ARGV[1] then return 'changed' end
local lease_key = jget(KEYS[1], 'lease_key')
if lease_key and redis.call('GET', lease_key) == token then return 'held' end

local lost = (tonumber(jget(KEYS[1], 'lost_runs') or 0) or 0) + 1
redis.call('HSET', KEYS[1], 'lost_runs', string.format('%d', lost),
  'lost_at', ARGV[3], 'lost_reason', jstr(ARGV[4]))
local limit = tonumber(ARGV[2]) or 0
if limit > 0 and lost >= limit then
  redis.call('HSET', KEYS[1],
    'status', jstr(TS.failed),
    'reason', jstr(poison_reason(lost, jget(KEYS[1], 'worker'))),
    'finished_at', ARGV[3])
  ended(KEYS[2], TS.failed, tonumber(ARGV[5] or '-1'))
  return 'poisoned'
end
redis.call('HSET', KEYS[1], 'status', jstr(TS.queued), 'queued_at', ARGV[3])
return 'requeued'
