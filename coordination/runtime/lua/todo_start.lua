-- Start a todo: every check and write before its command runs, in one step.
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4] = checkpoint, KEYS[5] = the repo's fence counter, KEYS[6] = the
-- repo's breaker hash, KEYS[7] / KEYS[8] = the repo's waiters (sorted set, by
-- rank) and their last-seen times, KEYS[9 .. 8+n] = the repo's n lease slots;
-- then per resource the todo names (in name order): its fence counter, its
-- waiters, their last-seen times and its capacity's slots; then one checkpoint
-- per predecessor.
-- ARGV[1..3] = event ledger (see emit in _common.lua), ARGV[4] = n, ARGV[5] =
-- token, ARGV[6] = lease ttl (ms), ARGV[7] = worker (JSON), ARGV[8] = now
-- (JSON), ARGV[9] = max lost runs (0: none), ARGV[10] = sweep id, ARGV[11] =
-- todo id, ARGV[12] = level (-1: eager), ARGV[13] = breaker failures (0: no
-- breaker), ARGV[14] = breaker cooldown (s), ARGV[15] = how long a probe may
-- run (s), ARGV[16] = this waiter's rank (member of the waiters sets: sorts
-- first when it should start first), ARGV[17] = seconds after which a waiter
-- not seen is dropped, ARGV[18] = 1 if this delivery has waited before (it is
-- in the lines: leave them when done), ARGV[19] = r (resources), ARGV[20 ..
-- 19+r] = their capacities, ARGV[20+r .. 19+2r] = their names, ARGV[20+2r] =
-- the repo, then the predecessors' ids.
-- Returns one of
--   {'started', slot, fence, attempts, taken_over (0|1), resource keys (JSON)}  run it now
--   {'gone', sweep status}     sweep missing or not dispatching (paused, ended)
--   {'terminal', status}       already ended (a duplicate delivery)
--   {'skipped', reason, terminal count, level done}  a predecessor did not succeed
--   {'premature', waiting JSON}  a predecessor is not done yet
--   {TS.held, 0|1}            the repo's breaker is open (1: held just now)
--   {'wait', what}             no free slot for this waiter (repo or resource): retry later
--   {'busy'} | {'stale'}       another delivery owns the todo
--   {'poisoned', terminal count, level done}  taking over a dead holder's run was its last allowed
--
-- Races closed: the sweep being paused or cancelled, a predecessor failing, a
-- lease slot being granted to someone else, or a second delivery claiming the
-- todo, between any two of the checks a worker used to make one round trip at
-- a time. Now the sweep is dispatching, the predecessors have succeeded, the
-- breaker lets it through, it is first in line, the repo slot and every
-- resource slot are granted with the next fences, the checkpoint is claimed and
-- 'todo.started' is in the ledger, all at the same instant or none of it.
-- Slots are taken only when everything else says go, and all together or not
-- at all, so a refused start holds nothing and two todos each holding what the
-- other needs (a deadlock) cannot happen. Waiters queue by rank: a waiter
-- starts only while fewer live waiters rank before it than there are free
-- slots, so a low-priority todo arriving while a critical one waits does not
-- jump the queue (one arriving at a free slot with nobody waiting takes it
-- without joining the line: there is no one to pass); a waiter not seen for ARGV[17] s (its worker died) is dropped
-- from the line. (A takeover reads the previous holder's lease key from the
-- checkpoint, not KEYS: fine on a single Redis, as in checkpoint_claim.)
local sweep, cp, fence_key, breaker = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local nslots = tonumber(ARGV[4])
local token, ttl, worker, now = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local max_lost = tonumber(ARGV[9]) or 0
local sweep_id, todo_id, level = ARGV[10], ARGV[11], tonumber(ARGV[12])
local brk_n, brk_cooldown, probe_for = tonumber(ARGV[13]) or 0, tonumber(ARGV[14]) or 0,
  tonumber(ARGV[15]) or 0
local rank, stale = ARGV[16], tonumber(ARGV[17]) or 5
local waited = ARGV[18] == '1'
local in_lines = waited
local nres = tonumber(ARGV[19]) or 0
local now_n = tonumber(now)
local me = sweep_id .. '/' .. todo_id

-- The lines this todo may wait in: {waiters, seen, first slot index, slots, fence}.
local lines = {{KEYS[7], KEYS[8], 9, nslots, fence_key}}
local k = 9 + nslots
local res_names = {}
for i = 1, nres do
  local cap = tonumber(ARGV[19 + i])
  lines[#lines + 1] = {KEYS[k + 1], KEYS[k + 2], k + 3, cap, KEYS[k]}
  res_names[i] = ARGV[19 + nres + i]
  k = k + 3 + cap
end
local first_pred, first_pred_arg = k, 21 + 2 * nres
local repo = ARGV[20 + 2 * nres]

local function leave_lines()
  for _, line in ipairs(lines) do
    redis.call('ZREM', line[1], rank)
    redis.call('ZREM', line[2], rank)
  end
end

-- How many live waiters of a line rank before this one (registering it).
local function ahead(line)
  in_lines = true
  local dead = redis.call('ZRANGEBYSCORE', line[2], '-inf', '(' .. (now_n - stale))
  for _, m in ipairs(dead) do
    redis.call('ZREM', line[1], m)
    redis.call('ZREM', line[2], m)
  end
  redis.call('ZADD', line[1], 0, rank)
  redis.call('ZADD', line[2], now_n, rank)
  return redis.call('ZLEXCOUNT', line[1], '-', '(' .. rank)
end

local function free(line)
  local n = 0
  for i = line[3], line[3] + line[4] - 1 do
    if redis.call('EXISTS', KEYS[i]) == 0 then n = n + 1 end
  end
  return n
end

local function main()
  local sweep_status = jget(sweep, 'status')
  if sweep_status == nil then return {'gone', 'missing'} end
  if not SWEEP_ACTIVE[sweep_status] then return {'gone', sweep_status} end
  -- Every checkpoint field the steps below need, in one read.
  local f = redis.call('HMGET', cp, 'status', 'token', 'lease_key', 'fence', 'attempts',
    'lost_runs', 'worker', 'resource_keys')
  local status = todo_known(jdecode(f[1]))
  if status == nil then return {'terminal', 'missing'} end
  if TERMINAL[status] then return {'terminal', status} end
  local prev_token, prev_key = jdecode(f[2]), jdecode(f[3])
  local attempts = tonumber(jdecode(f[5]) or 0) or 0
  if status == TS.running and prev_token == token then
    -- This very start, retried after its reply was lost: answer it again.
    for i = 1, nslots do
      if KEYS[8 + i] == prev_key then
        return {'started', i - 1, tonumber(jdecode(f[4])), attempts, 0, f[8] or '[]'}
      end
    end
  end

  local waiting = {}
  for i = first_pred, #KEYS do
    local pred = ARGV[first_pred_arg + i - first_pred]
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
    local _, opened = breaker_failed(breaker, brk_n, now_n)
    if max_lost > 0 and lost >= max_lost then
      redis.call('HSET', cp, 'lost_runs', string.format('%d', lost),
        'status', jstr(TS.failed), 'reason', jstr(poison_reason(lost, jdecode(f[7]))),
        'finished_at', now)
      local n, level_done = ended(sweep, TS.failed, level)
      return {'poisoned', n, level_done, opened and 1 or 0}
    end
    redis.call('HSET', cp, 'lost_runs', string.format('%d', lost))
    taken_over = true
  elseif not NOT_STARTED[status] then
    return {'terminal', status}  -- a known status with no way to running
  end

  -- The breaker: open holds the repo's todos; after the cooldown one (the
  -- probe) goes through, and its outcome closes or re-opens it.
  local probe = false
  if brk_n > 0 and not taken_over then
    local b = redis.call('HMGET', breaker, 'state', 'opened_at', 'probe', 'probe_until')
    local state = b[1] or BS.closed
    if state ~= BS.closed then
      if state == BS.open and now_n - (tonumber(b[2]) or 0) >= brk_cooldown then
        probe = true
      elseif state == BS.half_open and (b[3] == me or now_n > (tonumber(b[4]) or 0)) then
        probe = true  -- this very probe again, or the last one never reported
      end
      if not probe then
        if status == TS.held then return {TS.held, 0} end
        redis.call('HSET', cp, 'status', jstr(TS.held), 'held_at', now)
        local ev = event(EV.todo_held, sweep_id, todo_id, now_n)
        ev.repo = repo
        ev.reason = 'the breaker of its repo is open'
        emit(ev)
        return {TS.held, 1}
      end
    end
  end

  -- First in line for the repo and every resource, and a slot free in each. With
  -- nobody in a line and a slot free (the common case) there is no one to be
  -- ahead of: take it without joining the line.
  for i, line in ipairs(lines) do
    local open = free(line)
    local queue = waited or open == 0 or redis.call('ZCARD', line[1]) > 0
    if queue and ahead(line) >= open then
      return {'wait', i == 1 and 'repo' or res_names[i - 1]}
    end
  end
  local taken = {}
  for _, line in ipairs(lines) do
    local got
    for i = line[3], line[3] + line[4] - 1 do
      if redis.call('SET', KEYS[i], token, 'NX', 'PX', ttl) then
        got = i
        break
      end
    end
    taken[#taken + 1] = got
  end
  local fence = redis.call('INCR', fence_key)
  if fence < (tonumber(jdecode(f[4]) or 0) or 0) then
    -- The fence counter went back (Redis lost data): never run under a lower fence.
    for _, i in ipairs(taken) do redis.call('DEL', KEYS[i]) end
    return {'stale'}
  end
  local res_keys, res_fences = {}, {}
  for j = 2, #lines do
    res_keys[#res_keys + 1] = KEYS[taken[j]]
    res_fences[#res_fences + 1] = redis.call('INCR', lines[j][5])
  end
  local slot = taken[1] - 8
  attempts = attempts + 1
  local rk = cjson.encode(res_keys)
  if #res_keys == 0 then rk = '[]' end
  redis.call('HSET', cp,
    'status', jstr(TS.running),
    'token', jstr(token),
    'fence', string.format('%d', fence),
    'lease_key', jstr(KEYS[taken[1]]),
    'resource_keys', rk,
    'worker', worker,
    'started_at', now,
    'attempts', string.format('%d', attempts),
    'finished_at', 'null',
    'exit_code', 'null')
  if sweep_status == SS.queued then
    redis.call('HSET', sweep, 'status', jstr(SS.running), 'started_at', now)
  end
  if probe then
    redis.call('HSET', breaker, 'state', BS.half_open, 'probe', me,
      'probe_until', tostring(now_n + probe_for))
  end
  if taken_over then
    local lost = event(EV.todo_lost, sweep_id, todo_id, now_n)
    lost.reason = 'taken over'
    emit(lost)
  end
  local ev = event(EV.todo_started, sweep_id, todo_id, now_n)
  ev.worker = cjson.decode(worker)
  ev.fence = fence
  if #res_keys > 0 then ev.resources = res_names end
  if probe then ev.probe = true end
  emit(ev)
  return {'started', slot - 1, fence, attempts, taken_over and 1 or 0, rk}
end

local res = main()
if res[1] ~= 'wait' and in_lines then leave_lines() end
return res
