-- A running todo whose lease is gone (its worker died, froze or lost Redis):
-- put it back to 'queued' to be sent again, or, after too many such lost
-- runs, end it 'failed' as a poison todo. Either way the lost run counts
-- against the repo's breaker.
-- KEYS[1..2] = event ledger (see emit in _common.lua), KEYS[3] = checkpoint
-- hash, KEYS[4] = sweep hash (its counters), KEYS[5] = the repo's breaker
-- ARGV[1..3] = event ledger, ARGV[4] = the holder's token as the caller saw
-- it, ARGV[5] = lost-run limit (0: none), ARGV[6] = now (JSON), ARGV[7] = why
-- (raw text, for lost_reason), ARGV[8] = the todo's level (-1: none; for the
-- sweep's counters), ARGV[9] = breaker failures (0: no breaker), ARGV[10] =
-- the repo, ARGV[11] = sweep id, ARGV[12] = todo id
-- Returns 'requeued' | 'poisoned' (now failed) | 'alive' | 'changed' | 'gone'.
--
-- Races closed: the holder renewing its lease, or finishing, between the
-- supervisor's read and this write (the lease and status are re-read here, so
-- a live holder is never taken for dead); two supervisors counting one lost
-- run twice (only the first sees 'running' with that token); and a poison
-- todo looping forever (the count and the verdict are one step). The lease
-- key is read from the checkpoint, not passed in KEYS (single Redis only, as
-- in checkpoint_claim).
local cp, sweep = KEYS[3], KEYS[4]
if redis.call('EXISTS', cp) == 0 then return 'gone' end
if todo_known(jget(cp, 'status')) ~= TS.running then return 'changed' end
local token = jget(cp, 'token')
if token ~= ARGV[4] then return 'changed' end
local lease_key = jget(cp, 'lease_key')
if lease_key and redis.call('GET', lease_key) == token then return 'alive' end

local now = ARGV[6]
local fails, opened = breaker_failed(KEYS[5], tonumber(ARGV[9]) or 0, tonumber(now))
if opened then
  local b = event(EV.repo_breaker_open, ARGV[11], ARGV[12], tonumber(now))
  b.repo, b.failures = ARGV[10], fails
  emit(b)
end
local lost = (tonumber(jget(cp, 'lost_runs') or 0) or 0) + 1
redis.call('HSET', cp, 'lost_runs', string.format('%d', lost),
  'lost_at', now, 'lost_reason', jstr(ARGV[7]))
local limit = tonumber(ARGV[5]) or 0
if limit > 0 and lost >= limit then
  redis.call('HSET', cp,
    'status', jstr(TS.failed),
    'reason', jstr(poison_reason(lost, jget(cp, 'worker'))),
    'finished_at', now)
  ended(sweep, TS.failed, tonumber(ARGV[8] or '-1'))
  return 'poisoned'
end
redis.call('HSET', cp, 'status', jstr(TS.queued), 'queued_at', now)
return 'requeued'
