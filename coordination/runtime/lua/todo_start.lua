-- Start a todo: every check and write before its command runs, in one step.
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4] = checkpoint, KEYS[5] = the repo's fence counter,
-- KEYS[6 .. 5+n] = the repo's n lease slots, then one checkpoint per predecessor.
-- ARGV[1..3] = event ledger (see emit in _common.lua), ARGV[4] = n, ARGV[5] =
-- token, ARGV[6] = lease ttl (ms), ARGV[7] = worker (JSON), ARGV[8] = now
-- (JSON), ARGV[9] = max lost runs (0: none), ARGV[10] = sweep id, ARGV[11] =
-- todo id, ARGV[12] = level (-1: eager), ARGV[13 ..] = the predecessors' ids.
-- Returns one of
--   {'started', slot, fence, attempts, taken_over (0|1)}  run it now
--   {'gone', sweep status}     sweep missing or not dispatching (paused, ended)
--   {'terminal', status}       already ended (a duplicate delivery)
--   {'skipped', reason, terminal count, level done}  a predecessor did not succeed
--   {'premature', waiting JSON}  a predecessor is not done yet
--   {'wait'}                   every lease slot of the repo is held: retry later
--   {'busy'} | {'stale'}       another delivery owns the todo
--   {'poisoned', terminal count, level done}  taking over a dead holder's run was its last allowed
--
-- Races closed: the sweep being paused or cancelled, a predecessor failing, a
-- lease slot being granted to someone else, or a second delivery claiming the
-- todo, between any two of the checks a worker used to make one round trip at
-- a time. Now the sweep is dispatching, the predecessors have succeeded, the
-- lease is granted with the next fence, the checkpoint is claimed and
-- 'todo.started' is in the ledger, all at the same instant or none of it. The
-- lease is taken only when everything else says go, so a refused start holds
-- no slot. (A takeover reads the previous holder's lease key from the
-- checkpoint, not KEYS: fine on a single Redis, as in checkpoint_claim.)
local sweep, cp, fence_key = KEYS[3], KEYS[4], KEYS[5]
local nslots = tonumber(ARGV[4])
local token, ttl, worker, now = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local max_lost = tonumber(ARGV[9]) or 0
local sweep_id, todo_id, level = ARGV[10], ARGV[11], tonumber(ARGV[12])
local now_n = tonumber(now)

local sweep_status = jget(sweep, 'status')
if sweep_status == nil then return {'gone', 'missing'} end
if not SWEEP_ACTIVE[sweep_status] then return {'gone', sweep_status} end
-- Every checkpoint field the steps below need, in one read.
local f = redis.call('HMGET', cp, 'status', 'token', 'lease_key', 'fence', 'attempts',
  'lost_runs', 'worker')
local status = todo_known(jdecode(f[1]))
if status == nil then return {'terminal', 'missing'} end
if TERMINAL[status] then return {'terminal', status} end
local prev_token, prev_key = jdecode(f[2]), jdecode(f[3])
local attempts = tonumber(jdecode(f[5]) or 0) or 0
if status == TS.running and prev_token == token then
  -- This very start, retried after its reply was lost: answer it again.
  for i = 1, nslots do
    if KEYS[5 + i] == prev_key then
      return {'started', i - 1, tonumber(jdecode(f[4])), attempts, 0}
    end
  end
end

local waiting = {}
for i = 6 + nslots, #KEYS do
  local pred = ARGV[13 + i - (6 + nslots)]
  local ps = todo_known(jget(KEYS[i], 'status'))
  if UNSUCCESSFUL[ps] then
    if not NOT_STARTED[status] then return {'busy'} end
    local reason = pred .. ' ' .. ps
    redis.call('HSET', cp, 'status', jstr(TS.skipped), 'reason', jstr(reason), 'finished_at', now)
    local n, level_done = ended(sweep, TS.skipped, level)
    local ev = event(EV.todo_skipped, sweep_id, todo_id, now_n)
    ev.reason = reason
    emit(ev)
    return {TS.skipped, reason, n, level_done}
  elseif not SUCCESSFUL[ps] then
    waiting[#waiting + 1] = pred
  end
end
if #waiting > 0 then return {'premature', cjson.encode(waiting)} end

local taken_over = false
if status == TS.running then
  -- Held by someone else: only a dead holder's run may be taken over, and each
  -- takeover counts a lost run (at max_lost the todo is poison: it ends failed).
  if prev_key and prev_token and redis.call('GET', prev_key) == prev_token then
    return {'busy'}
  end
  local lost = (tonumber(jdecode(f[6]) or 0) or 0) + 1
  if max_lost > 0 and lost >= max_lost then
    redis.call('HSET', cp, 'lost_runs', string.format('%d', lost),
      'status', jstr(TS.failed), 'reason', jstr(poison_reason(lost, jdecode(f[7]))),
      'finished_at', now)
    local n, level_done = ended(sweep, TS.failed, level)
    return {'poisoned', n, level_done}
  end
  redis.call('HSET', cp, 'lost_runs', string.format('%d', lost))
  taken_over = true
elseif not NOT_STARTED[status] then
  return {'terminal', status}  -- a known status with no way to running
end

local slot
for i = 1, nslots do
  if redis.call('SET', KEYS[5 + i], token, 'NX', 'PX', ttl) then
    slot = i
    break
  end
end
if slot == nil then return {'wait'} end
local fence = redis.call('INCR', fence_key)
if fence < (tonumber(jdecode(f[4]) or 0) or 0) then
  -- The fence counter went back (Redis lost data): never run under a lower fence.
  redis.call('DEL', KEYS[5 + slot])
  return {'stale'}
end
attempts = attempts + 1
redis.call('HSET', cp,
  'status', jstr(TS.running),
  'token', jstr(token),
  'fence', string.format('%d', fence),
  'lease_key', jstr(KEYS[5 + slot]),
  'worker', worker,
  'started_at', now,
  'attempts', string.format('%d', attempts),
  'finished_at', 'null',
  'exit_code', 'null')
if sweep_status == SS.queued then
  redis.call('HSET', sweep, 'status', jstr(SS.running), 'started_at', now)
end
if taken_over then
  local lost = event(EV.todo_lost, sweep_id, todo_id, now_n)
  lost.reason = 'taken over'
  emit(lost)
end
local ev = event(EV.todo_started, sweep_id, todo_id, now_n)
ev.worker = cjson.decode(worker)
ev.fence = fence
emit(ev)
return {'started', slot - 1, fence, attempts, taken_over and 1 or 0}
