-- A start its worker gave up on before running anything (no replica confirmed it
-- while the worker's patience lasted: Transitions.start raised NotReplicated every
-- time): give it back. The checkpoint goes back to 'queued' (its attempt uncounted),
-- the lease's slots held by the token are released, and no lost run is counted, nor
-- a breaker failure: the command never ran, so nothing "died while running it".
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash
-- ARGV[1..2] = event ledger, ARGV[3] = the start's token, ARGV[4] = now (JSON),
-- ARGV[5] = why (raw text), ARGV[6] = sweep id, ARGV[7] = todo id
-- Returns 'given_back' (queued again) | 'changed' (not running under this token any more) | 'gone'.
--
-- Race closed: the supervisor finding the lease gone and counting a lost run (and,
-- at COORD_MAX_LOST_RUNS, failing the todo "as poison") for a run that never began:
-- status, token and slots change in one step, so it sees either a live lease or a
-- queued todo. A retry of the same start that did go through meanwhile (its token
-- renewed) is given back too: its worker has not run it either (the caller only
-- gives up on a start it never got an answer it could act on).
local sweep, todo_id, token = KEYS[2], ARGV[7], ARGV[3]
local got = hmget(sweep, tally_names({'t:' .. todo_id}, {todo_id}))
load_tally(got)
if not got['t:' .. todo_id] then return 'gone' end
local cp = cp_decode(got['t:' .. todo_id])
if cp_status(cp) ~= TS.running or cp.token ~= token then return 'changed' end
local now_n = tonumber(ARGV[4])
local held = {cp.lease_key}
for _, rk in ipairs(cp.resource_keys or {}) do held[#held + 1] = rk end
for _, k in ipairs(held) do
  if k and redis.call('GET', k) == token then redis.call('DEL', k) end
end
cp.status, cp.queued_at = TS.queued, now_n
cp.token, cp.lease_key, cp.resource_keys, cp.started_at = nil, nil, nil, nil
cp.attempts = math.max(0, (tonumber(cp.attempts) or 1) - 1)
put_cp(todo_id, cp)
flush(sweep)
local ev = event(EV.todo_queued, ARGV[6], todo_id, now_n)
ev.reason = ARGV[5]
emit(ev)
return 'given_back'
