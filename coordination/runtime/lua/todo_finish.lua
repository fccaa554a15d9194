-- Record how a todo's run ended, and everything that follows from it, in one step.
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4] = checkpoint, KEYS[5] = the holder's lease slot, KEYS[6] = the
-- sweep's remaining-predecessors hash (eager), KEYS[7 ..] = checkpoints of the
-- successors to look at (eager strategy, on success).
-- ARGV[1..3] = event ledger, ARGV[4] = token, ARGV[5] = fence, ARGV[6] = status,
-- ARGV[7] = event fields (JSON object), ARGV[8] = sweep id, ARGV[9] = todo id,
-- ARGV[10] = the sweep's todo count, ARGV[11] = now (JSON), ARGV[12] = level
-- (-1: eager), ARGV[13] = k, ARGV[14 .. 13+2k] = checkpoint field, JSON value
-- pairs, then a successor id and its queue per successor key.
-- Returns {'ok', terminal count, level done (0|1), queued successors (JSON)}
-- or {'rejected', 'missing' | 'fence' | 'lease' | 'token' | 'status'}.
--
-- Races closed: a holder paused past its TTL writing over the run of the
-- worker that took the todo over (fence, lease and token are checked at the
-- instant of the write, as in checkpoint_write); the outcome being recorded
-- without its counters or event, or the lease released before the outcome is
-- in (the next holder would find the todo still running); and two
-- predecessors finishing at once both, or neither, queueing their common
-- successor (the remaining count and the successor's move to queued are one
-- step, so exactly one finisher sees it reach zero and queues it).
local sweep, cp, lease_key, remaining = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, fence, status = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local sweep_id, todo_id, total, now = ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11]
local level, k = tonumber(ARGV[12]), tonumber(ARGV[13])
if not TERMINAL[status] then return redis.error_reply('not a terminal status: ' .. status) end

local f = redis.call('HMGET', cp, 'status', 'fence', 'token')
local current = todo_known(jdecode(f[1]))
if current == nil then return {'rejected', 'missing'} end
if fence < (tonumber(jdecode(f[2]) or 0) or 0) then return {'rejected', 'fence'} end
if redis.call('GET', lease_key) ~= token then return {'rejected', 'lease'} end
if jdecode(f[3]) ~= token then return {'rejected', 'token'} end
if current ~= TS.running then return {'rejected', 'status'} end

redis.call('HSET', cp, 'status', jstr(status), unpack(ARGV, 14, 13 + 2 * k))
redis.call('DEL', lease_key)
local n, level_done = ended(sweep, status, level)
local ev = cjson.decode(ARGV[7])
ev.kind, ev.ts, ev.sweep_id, ev.todo_id = 'todo.' .. status, tonumber(now), sweep_id, todo_id
emit(ev)

local ready = {}
if SUCCESSFUL[status] and #KEYS >= 7 and SWEEP_ACTIVE[jget(sweep, 'status')] then
  local first = 14 + 2 * k
  for i = 7, #KEYS do
    local j = first + 2 * (i - 7)
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
elseif SUCCESSFUL[status] and #KEYS >= 7 then
  -- Paused: count down only; the supervisor queues what is ready on unpause.
  local first = 14 + 2 * k
  for i = 7, #KEYS do
    redis.call('HINCRBY', remaining, ARGV[first + 2 * (i - 7)], -1)
  end
end
return {'ok', n, level_done, cjson.encode(ready)}
