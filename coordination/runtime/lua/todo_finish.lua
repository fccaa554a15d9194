-- Record how a todo's run ended, and everything that follows from it, in one step.
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4] = checkpoint, KEYS[5] = the holder's repo lease slot, KEYS[6] =
-- the sweep's remaining-predecessors hash (eager), KEYS[7] = the repo's breaker,
-- KEYS[8] = the repo's waiters, then the m resource slots the holder holds and
-- the m resources' waiters, then the checkpoints of the successors to look at
-- (eager strategy, on success).
-- ARGV[1..3] = event ledger, ARGV[4] = token, ARGV[5] = fence, ARGV[6] = status,
-- ARGV[7] = event fields (JSON object), ARGV[8] = sweep id, ARGV[9] = todo id,
-- ARGV[10] = the sweep's todo count, ARGV[11] = now (JSON), ARGV[12] = level
-- (-1: eager), ARGV[13] = breaker failures (0: no breaker), ARGV[14] = the repo,
-- ARGV[15] = m, ARGV[16] = prefix of the waiters' wake-up lists, ARGV[17] = k,
-- ARGV[18 .. 17+2k] = checkpoint field, JSON value pairs, then a successor id
-- and its queue per successor key.
-- Returns {'ok', terminal count, level done (0|1), queued successors (JSON)}
-- or {'rejected', 'missing' | 'fence' | 'lease' | 'token' | 'status'}.
--
-- Races closed: a holder paused past its TTL writing over the run of the
-- worker that took the todo over (fence, lease and token are checked at the
-- instant of the write, as in checkpoint_write; every resource slot too); the
-- outcome being recorded without its counters or event, or the lease released
-- before the outcome is in (the next holder would find the todo still
-- running); two predecessors finishing at once both, or neither, queueing their
-- common successor (the remaining count and the successor's move to queued are
-- one step, so exactly one finisher sees it reach zero and queues it); and two
-- outcomes of one repo racing on its breaker's count (counted here, with the
-- outcome). The first waiter of each released line is woken in the same step,
-- so the slot goes to it, not to whoever polls first.
local sweep, cp, lease_key, remaining = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, fence, status = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local sweep_id, todo_id, total, now = ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11]
local level = tonumber(ARGV[12])
local brk_n, repo, m, wake = tonumber(ARGV[13]) or 0, ARGV[14], tonumber(ARGV[15]) or 0, ARGV[16]
local k = tonumber(ARGV[17])
local first_succ = 9 + 2 * m
if not TERMINAL[status] then return redis.error_reply('not a terminal status: ' .. status) end

local f = redis.call('HMGET', cp, 'status', 'fence', 'token')
local current = todo_known(jdecode(f[1]))
if current == nil then return {'rejected', 'missing'} end
if fence < (tonumber(jdecode(f[2]) or 0) or 0) then return {'rejected', 'fence'} end
if redis.call('GET', lease_key) ~= token then return {'rejected', 'lease'} end
if jdecode(f[3]) ~= token then return {'rejected', 'token'} end
for i = 9, 8 + m do
  if redis.call('GET', KEYS[i]) ~= token then return {'rejected', 'lease'} end
end
if current ~= TS.running then return {'rejected', 'status'} end

redis.call('HSET', cp, 'status', jstr(status), unpack(ARGV, 18, 17 + 2 * k))
redis.call('DEL', lease_key)
for i = 9, 8 + m do redis.call('DEL', KEYS[i]) end
local n, level_done = ended(sweep, status, level)
local ev = cjson.decode(ARGV[7])
ev.kind, ev.ts, ev.sweep_id, ev.todo_id = 'todo.' .. status, tonumber(now), sweep_id, todo_id
emit(ev)
if status == TS.failed then
  local fails, opened = breaker_failed(KEYS[7], brk_n, tonumber(now))
  if opened then
    local b = event(EV.repo_breaker_open, sweep_id, todo_id, tonumber(now))
    b.repo, b.failures = repo, fails
    emit(b)
  end
elseif status == TS.succeeded and breaker_succeeded(KEYS[7], brk_n) then
  local b = event(EV.repo_breaker_closed, sweep_id, todo_id, tonumber(now))
  b.repo, b.by = repo, 'probe'
  emit(b)
end
-- Wake the first waiter of the repo and of each resource released.
for _, w in ipairs({KEYS[8], unpack(KEYS, 9 + m, 8 + 2 * m)}) do
  local best = redis.call('ZRANGE', w, 0, 0)[1]
  if best then
    redis.call('LPUSH', wake .. best, '1')
    redis.call('PEXPIRE', wake .. best, 10000)
  end
end

local ready = {}
if SUCCESSFUL[status] and #KEYS >= first_succ and SWEEP_ACTIVE[jget(sweep, 'status')] then
  local first = 18 + 2 * k
  for i = first_succ, #KEYS do
    local j = first + 2 * (i - first_succ)
    local succ, queue = ARGV[j], ARGV[j + 1]
    if redis.call('HINCRBY', remaining, succ, -1) == 0
        and todo_known(jget(KEYS[i], 'status')) == TS.pending then
      redis.call('HSET', KEYS[i], 'status', jstr(TS.queued), 'queued_at', now)
      local q = event(EV.todo_queued, sweep_id, succ, tonumber(now))
      q.queue, q.via = queue, 'eager after ' .. todo_id
      emit(q)
      ready[#ready + 1] = succ
    end
  end
elseif SUCCESSFUL[status] and #KEYS >= first_succ then
  -- Paused: count down only; the supervisor queues what is ready on unpause.
  local first = 18 + 2 * k
  for i = first_succ, #KEYS do
    redis.call('HINCRBY', remaining, ARGV[first + 2 * (i - first_succ)], -1)
  end
end
return {'ok', n, level_done, cjson.encode(ready)}
