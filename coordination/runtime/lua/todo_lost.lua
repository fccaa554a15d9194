-- A running todo whose lease is gone (its worker died, froze or lost Redis):
-- put it back to 'queued' to be sent again, or, after too many such lost
-- runs, end it 'failed' as a poison todo. Either way the lost run counts
-- against the repo's breaker.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash, KEYS[3] = the repo's breaker
-- ARGV[1..2] = event ledger, ARGV[3] = the holder's token as the caller saw
-- it, ARGV[4] = lost-run limit (0: none), ARGV[5] = now (JSON), ARGV[6] = why
-- (raw text, for lost_reason), ARGV[7] = the todo's level (-1: none; for the
-- sweep's counters), ARGV[8] = breaker failures (0: no breaker), ARGV[9] =
-- the repo, ARGV[10] = sweep id, ARGV[11] = todo id, ARGV[12] = the outcome seal
-- (JSON, '' : none) of the todo ending 'failed' in this run, written with a poison
-- verdict (Lua cannot compute an HMAC: the caller seals it before)
-- Returns 'requeued' | 'poisoned' (now failed) | 'alive' | 'changed' | 'gone'.
--
-- Races closed: the holder renewing its lease, or finishing, between the
-- supervisor's read and this write (the lease and status are re-read here, so
-- a live holder is never taken for dead); two supervisors counting one lost
-- run twice (only the first sees 'running' with that token); and a poison
-- todo looping forever (the count and the verdict are one step); a poison left
-- unsealed by a supervisor dying between its end and its seal (one step), or unsaid
-- (todo.lost, and a poison's todo.failed, are written here too). The lease
-- key is read from the checkpoint, not passed in KEYS (single Redis only, as
-- in todo_start).
local sweep, todo_id = KEYS[2], ARGV[11]
local level = tonumber(ARGV[7] or '-1')
local counters = counter_names({level})
local names = {'t:' .. todo_id}
for _, c in ipairs(counters) do names[#names + 1] = c end
local got = hmget(sweep, tally_names(names, {todo_id}))
load_tally(got)
if not got['t:' .. todo_id] then return 'gone' end
local cp = cp_decode(got['t:' .. todo_id])
if cp_status(cp) ~= TS.running then return 'changed' end
if cp.token ~= ARGV[3] then return 'changed' end
if cp.lease_key and redis.call('GET', cp.lease_key) == cp.token then return 'alive' end

local now_n = tonumber(ARGV[5])
breaker_failed_said(KEYS[3], tonumber(ARGV[8]) or 0, now_n, ARGV[10], todo_id, ARGV[9])
cp.lost_runs = (tonumber(cp.lost_runs) or 0) + 1
cp.lost_at, cp.lost_reason = now_n, ARGV[6]
local limit = tonumber(ARGV[4]) or 0
local verdict = 'requeued'
if limit > 0 and cp.lost_runs >= limit then
  cp.status, cp.reason = TS.failed, poison_reason(cp.lost_runs, cp.worker)
  cp.finished_at, cp.exit_code = now_n, nil
  if (ARGV[12] or '') ~= '' then cp.outcome_seal = cjson.decode(ARGV[12]) else cp.outcome_seal = nil end
  load_counters(got, counters)
  ended(TS.failed, level)
  verdict = 'poisoned'
  say_poisoned(ARGV[10], todo_id, cp, ARGV[6], now_n)
else
  cp.status, cp.queued_at = TS.queued, now_n
  say_lost(ARGV[10], todo_id, cp, ARGV[6], now_n)
end
put_cp(todo_id, cp)
flush(sweep)
return verdict
