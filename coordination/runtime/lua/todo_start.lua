-- Start a todo: every check and write before its command runs, in one step.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash, KEYS[3] = the repo's
-- fence counter, KEYS[4] = the repo's breaker hash, KEYS[5] / KEYS[6] = the
-- repo's waiters (sorted set, by rank) and their last-seen times, KEYS[7 ..
-- 6+n] = the repo's n lease slots; then per resource the todo names (in name
-- order): its fence counter, its waiters, their last-seen times and its
-- capacity's slots; then the todo's pace buckets (see pace_take in _common.lua).
-- ARGV[1..2] = event ledger (see emit in _common.lua), ARGV[3] = n, ARGV[4] =
-- token, ARGV[5] = lease ttl (ms), ARGV[6] = worker (JSON), ARGV[7] = now
-- (JSON), ARGV[8] = max lost runs (0: none), ARGV[9] = sweep id, ARGV[10] =
-- todo id, ARGV[11] = level (-1: eager), ARGV[12] = breaker failures (0: no
-- breaker), ARGV[13] = breaker cooldown (s), ARGV[14] = how long a probe may
-- run (s), ARGV[15] = this waiter's rank (member of the waiters sets: sorts
-- first when it should start first), ARGV[16] = seconds after which a waiter
-- not seen is dropped, ARGV[17] = 1 if this delivery has waited before (it is
-- in the lines: leave them when done), ARGV[18] = the sweep's run the caller's
-- spec is of ('' : any), ARGV[19] = r (resources), ARGV[20 .. 19+r] = their
-- capacities, ARGV[20+r .. 19+2r] = their names, ARGV[20+2r] = the repo,
-- ARGV[21+2r] = p (pace buckets), ARGV[22+2r .. 21+2r+2p] = each bucket's seconds
-- per token and burst, ARGV[22+2r+2p] / ARGV[23+2r+2p] = the outcome seal (JSON,
-- '' : none) of the todo ending 'skipped' / ending 'failed' (poisoned) in this run,
-- then the predecessors' ids. Lua cannot compute an HMAC: the caller seals both
-- endings this script may decide, and the one it decides is written with its status,
-- in the same step (a seal written after would leave the ending unsealed were the
-- worker to die in between).
-- Returns one of
--   {'started', slot, fence, attempts, taken_over (0|1), resource keys (JSON),
--    outputs}  run it now; outputs: how many of the sweep's todos kept results
--    ($COORD_OUTPUT; the sweep's 'outputs' count): 0 tells the worker there are
--    no inputs to read for it
--   {'gone', sweep status}     sweep missing or not dispatching (paused, ended)
--   {'run', current run}       the sweep moved on to another run than the caller's spec
--   {'terminal', status}       already ended (a duplicate delivery)
--   {'skipped', reason, terminal count, level done}  a predecessor did not succeed
--   {'premature', waiting JSON}  a predecessor is not done yet
--   {TS.held, 0|1}            the repo's breaker is open (1: held just now)
--   {'wait', what}             no free slot for this waiter (repo or resource): retry later
--   {'paced', due}             a pace bucket has no token: send it again at `due` (unix s);
--                              it stays queued, its checkpoint saying why and when
--   {'busy'} | {'stale'}       another delivery owns the todo
--   {'poisoned', terminal count, level done}  taking over a dead holder's run was its last allowed
--
-- Races closed: the sweep being paused or cancelled, a predecessor failing, a
-- lease slot being granted to someone else, or a second delivery claiming the
-- todo, between any two of the checks a worker used to make one round trip at
-- a time. Now the sweep is dispatching, the predecessors have succeeded, the
-- breaker lets it through, it is first in line, the repo slot and every
-- resource slot are granted with the next fences, the checkpoint is claimed and
-- 'todo.started' is in the ledger, all at the same instant or none of it. A
-- delivery built from an earlier run's spec (the sweep was resumed or rerun
-- since) is answered {'run', current} before anything is decided, so it never
-- starts by a spec the sweep has left.
-- Slots are taken only when everything else says go, and all together or not
-- at all, so a refused start holds nothing and two todos each holding what the
-- other needs (a deadlock) cannot happen. Waiters queue by rank: a waiter
-- starts only while fewer live waiters rank before it than there are free
-- slots, so a low-priority todo arriving while a critical one waits does not
-- jump the queue (one arriving with nobody waiting takes a free slot without
-- joining the line: there is no one to pass); a waiter not seen for ARGV[16] s
-- (its worker died) is dropped from the line. (A takeover reads the previous
-- holder's lease key from the checkpoint, not KEYS: fine on a single Redis; a
-- cluster would need the lease in the sweep's slot.)
-- Pacing is decided last, once the slots are granted: a token is taken only by a
-- start that happens in the same step, and a start refused a token gives its
-- slots back at once (it holds nothing while it waits for its token).
-- Waking: a finish wakes the first waiter of the lines it frees only when its todo
-- is flagged ('w:<todo>' in its sweep's hash, read with the rest of its one HMGET),
-- so a finish with nobody waiting (most) does not look at the line. The flag is set
-- by a delivery on its first 'wait' answer, on the todos holding the line's slots
-- (a start's token names its todo's sweep hash and id: see
-- transitions.start_token), and by a start that takes its slot while others are in
-- line (for the next in line); both in the same step as the wait or the start, so no
-- finish can slip between a waiter joining the line and the flag that wakes it. A
-- holder whose token names no todo (a landing step) is not flagged: its waiters ask
-- again on their own, as they do every second anyway.
local sweep, fence_key, breaker = KEYS[2], KEYS[3], KEYS[4]
local nslots = tonumber(ARGV[3])
local token, ttl, now = ARGV[4], ARGV[5], ARGV[7]
local max_lost = tonumber(ARGV[8]) or 0
local sweep_id, todo_id, level = ARGV[9], ARGV[10], tonumber(ARGV[11])
local brk_n, brk_cooldown, probe_for = tonumber(ARGV[12]) or 0, tonumber(ARGV[13]) or 0,
  tonumber(ARGV[14]) or 0
local rank, stale = ARGV[15], tonumber(ARGV[16]) or 5
local waited = ARGV[17] == '1'
local want_run = ARGV[18]
local in_lines = waited
local nres = tonumber(ARGV[19]) or 0
local now_n = tonumber(now)
local me = sweep_id .. '/' .. todo_id

-- The lines this todo may wait in: {waiters, seen, first slot index, slots, fence}.
local lines = {{KEYS[5], KEYS[6], 7, nslots, fence_key}}
local k = 7 + nslots
local res_names = {}
for i = 1, nres do
  local cap = tonumber(ARGV[19 + i])
  lines[#lines + 1] = {KEYS[k + 1], KEYS[k + 2], k + 3, cap, KEYS[k]}
  res_names[i] = ARGV[19 + nres + i]
  k = k + 3 + cap
end
local repo = ARGV[20 + 2 * nres]
local npace = tonumber(ARGV[21 + 2 * nres]) or 0
local pace_keys, pace_ivs, pace_bursts = {}, {}, {}
for i = 1, npace do
  pace_keys[i] = KEYS[k + i - 1]
  pace_ivs[i] = tonumber(ARGV[20 + 2 * nres + 2 * i])
  pace_bursts[i] = tonumber(ARGV[21 + 2 * nres + 2 * i])
end
local at_seals = 22 + 2 * nres + 2 * npace
local seal_skipped, seal_failed = ARGV[at_seals], ARGV[at_seals + 1]
local preds = {}
for i = at_seals + 2, #ARGV do preds[#preds + 1] = ARGV[i] end

-- An ending this script decides: its seal, or none (an older one never stays beside it).
local function sealed(cp, seal)
  cp.exit_code = nil
  if seal ~= '' then cp.outcome_seal = cjson.decode(seal) else cp.outcome_seal = nil end
end

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

-- The free slots of a line (their key indexes).
local function free(line)
  local out = {}
  for i = line[3], line[3] + line[4] - 1 do
    if redis.call('EXISTS', KEYS[i]) == 0 then out[#out + 1] = i end
  end
  return out
end

local taken = {}
-- Others are in a line this start takes a slot of (its finish wakes the next).
local others = false

-- Flag the todos holding a line's slots: their finish wakes the first in line.
local function flag_holders(line)
  for i = line[3], line[3] + line[4] - 1 do
    local tok = redis.call('GET', KEYS[i])
    local skey, tid = nil, nil
    if tok then skey, tid = string.match(tok, '^[^|]*|([^|]*)|(.+)$') end
    if skey and redis.call('HEXISTS', skey, 't:' .. tid) == 1 then
      redis.call('HSET', skey, 'w:' .. tid, '1')
    end
  end
end

local function give_back()
  for _, i in ipairs(taken) do redis.call('DEL', KEYS[i]) end
  taken = {}
end

-- Take a slot of each line, all or none. A line nobody waits in (and which this
-- delivery has not waited in) is tried slot by slot, SET NX, with no count of
-- its free slots: the common case costs its waiters' count and one SET. A line
-- with waiters, or one this delivery waited in, goes by rank.
local function take_slots()
  for li, line in ipairs(lines) do
    local candidates
    if waited or redis.call('ZCARD', line[1]) > 0 then
      others = true
      candidates = free(line)
      if ahead(line) >= #candidates then
        if not waited then flag_holders(line) end
        give_back()
        return li == 1 and 'repo' or res_names[li - 1]
      end
    else
      -- Tried from a slot that changes with the clock: always trying the first
      -- slot first costs a failed SET whenever it is the one held (most starts on
      -- a busy repo).
      candidates = {}
      local n, first = line[4], math.floor(now_n * 1000) % line[4]
      for j = 0, n - 1 do candidates[#candidates + 1] = line[3] + (first + j) % n end
    end
    local got
    for _, i in ipairs(candidates) do
      if redis.call('SET', KEYS[i], token, 'NX', 'PX', ttl) then
        got = i
        break
      end
    end
    if got == nil then
      -- Every slot held: wait in line (a line it was not in yet is joined now).
      if not in_lines then ahead(line) end
      if not waited then flag_holders(line) end
      give_back()
      return li == 1 and 'repo' or res_names[li - 1]
    end
    taken[#taken + 1] = got
  end
  return nil
end

local function main()
  -- Everything decided on below, in one read: the sweep's status and run, this
  -- todo's checkpoint, its predecessors' and the counters a skip moves.
  local counters = counter_names({level})
  local names = {'status', 'run', 't:' .. todo_id, 'outputs', 'w:' .. todo_id}
  for _, c in ipairs(counters) do names[#names + 1] = c end
  for _, p in ipairs(preds) do names[#names + 1] = 't:' .. p end
  local got = hmget(sweep, tally_names(names, {todo_id}))
  load_tally(got)
  local sweep_status = jdecode(got.status)
  if sweep_status == nil then return {'gone', 'missing'} end
  if not SWEEP_ACTIVE[sweep_status] then return {'gone', sweep_status} end
  local run = tostring(jdecode(got.run) or 0)
  if want_run ~= '' and want_run ~= run then return {'run', run} end
  load_counters(got, counters)
  local cp = cp_decode(got['t:' .. todo_id])
  local status = cp_status(cp)
  if TERMINAL[status] then return {'terminal', status} end
  local attempts = tonumber(cp.attempts) or 0
  if status == TS.running and cp.token == token then
    -- This very start, retried after its reply was lost (or after a replica did not
    -- confirm it: see Transitions.start): answer it again, renewing the lease, so the
    -- retry writes and a WAIT after it covers the start. A lease that expired since
    -- is not given back: the supervisor finds the run lost.
    if redis.call('GET', cp.lease_key) ~= token then return {'stale'} end
    for i = 1, nslots do
      if KEYS[6 + i] == cp.lease_key then
        redis.call('PEXPIRE', cp.lease_key, ttl)
        for _, rk in ipairs(cp.resource_keys or {}) do
          if redis.call('GET', rk) == token then redis.call('PEXPIRE', rk, ttl) end
        end
        return {'started', i - 1, tonumber(cp.fence), attempts, 0,
          cjson.encode(cp.resource_keys or {}), tonumber(got.outputs) or 0}
      end
    end
  end

  local waiting = {}
  for _, pred in ipairs(preds) do
    local ps = cp_status(cp_decode(got['t:' .. pred]))
    if UNSUCCESSFUL[ps] then
      if not NOT_STARTED[status] then return {'busy'} end
      local reason = pred .. ' ' .. ps
      cp.status, cp.reason, cp.finished_at = TS.skipped, reason, now_n
      sealed(cp, seal_skipped)
      put_cp(todo_id, cp)
      local n, level_done = ended(TS.skipped, level)
      flush(sweep)
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
    if cp.lease_key and cp.token and redis.call('GET', cp.lease_key) == cp.token then
      return {'busy'}
    end
    cp.lost_runs = (tonumber(cp.lost_runs) or 0) + 1
    if max_lost > 0 and cp.lost_runs >= max_lost then
      breaker_failed_said(breaker, brk_n, now_n, sweep_id, todo_id, repo)
      cp.status, cp.reason = TS.failed, poison_reason(cp.lost_runs, cp.worker)
      cp.finished_at = now_n
      sealed(cp, seal_failed)
      put_cp(todo_id, cp)
      local n, level_done = ended(TS.failed, level)
      flush(sweep)
      say_poisoned(sweep_id, todo_id, cp, 'lease expired', now_n)
      return {'poisoned', n, level_done}
    end
    -- Counted (the run, and against the breaker) when the takeover happens: a
    -- delivery that has to wait for a slot first asks again, and must not count
    -- the same lost run at every ask.
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
        cp.status, cp.held_at = TS.held, now_n
        put_cp(todo_id, cp)
        flush(sweep)
        local ev = event(EV.todo_held, sweep_id, todo_id, now_n)
        ev.repo = repo
        ev.reason = 'the breaker of its repo is open'
        emit(ev)
        return {TS.held, 1}
      end
    end
  end

  local blocked = take_slots()
  if blocked ~= nil then return {'wait', blocked} end
  if npace > 0 then
    local due, tnow, empty = pace_take(pace_keys, pace_ivs, pace_bursts)
    if due ~= nil then
      give_back()
      -- Queued still, saying why and when it may start; the first refusal says so in
      -- the ledger too (todo.queued with the reason), later ones only move the time.
      local first = cp.paced_until == nil
      cp.paced_until, cp.reason = due, 'paced: waiting for a token of ' .. table.concat(
        empty, ', ')
      put_cp(todo_id, cp)
      flush(sweep)
      if first then
        local ev = event(EV.todo_queued, sweep_id, todo_id, now_n)
        ev.reason, ev.paced_until = cp.reason, due
        emit(ev)
      end
      return {'paced', string.format('%.3f', due)}
    end
    -- The start is stamped with the clock the buckets go by.
    now_n, now = tnow, string.format('%.6f', tnow)
  end
  local fence = redis.call('INCR', fence_key)
  if fence < (tonumber(cp.fence) or 0) then
    -- The fence counter went back (Redis lost data): never run under a lower fence.
    give_back()
    return {'stale'}
  end
  local res_keys = {}
  for j = 2, #lines do
    res_keys[#res_keys + 1] = KEYS[taken[j]]
    redis.call('INCR', lines[j][5])
  end
  attempts = attempts + 1
  cp.status, cp.token, cp.fence, cp.lease_key = TS.running, token, fence, KEYS[taken[1]]
  cp.worker, cp.started_at, cp.attempts = cjson.decode(ARGV[6]), now_n, attempts
  cp.finished_at, cp.exit_code, cp.outcome_seal = nil, nil, nil
  if cp.paced_until ~= nil then cp.paced_until, cp.reason = nil, nil end
  if #res_keys > 0 then cp.resource_keys = res_keys else cp.resource_keys = nil end
  put_cp(todo_id, cp)
  if others then
    put('w:' .. todo_id, '1')
  elseif got['w:' .. todo_id] then
    put('w:' .. todo_id, '')  -- (an earlier run's)
  end
  if sweep_status == SS.queued then
    put('status', jstr(SS.running))
    put('started_at', now)
  end
  flush(sweep)
  if taken_over then breaker_failed_said(breaker, brk_n, now_n, sweep_id, todo_id, repo) end
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
  ev.worker = cp.worker
  ev.fence = fence
  if #res_keys > 0 then ev.resources = res_names end
  if probe then ev.probe = true end
  emit(ev)
  local rk = '[]'
  if #res_keys > 0 then rk = cjson.encode(res_keys) end
  return {'started', taken[1] - 7, fence, attempts, taken_over and 1 or 0, rk,
    tonumber(got.outputs) or 0}
end

local res = main()
if res[1] ~= 'wait' and in_lines then leave_lines() end
return res
