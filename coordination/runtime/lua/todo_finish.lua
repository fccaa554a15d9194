-- Record how a todo's run ended, and everything that follows from it, in one step.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash, KEYS[3] = the holder's
-- repo lease slot, KEYS[4] = the repo's breaker, KEYS[5] = the repo's waiters,
-- then the m resource slots the holder holds and the m resources' waiters.
-- ARGV[1..2] = event ledger, ARGV[3] = token, ARGV[4] = fence, ARGV[5] = status,
-- ARGV[6] = event fields (JSON object), ARGV[7] = sweep id, ARGV[8] = todo id,
-- ARGV[9] = now (JSON), ARGV[10] = level (-1: eager), ARGV[11] = breaker
-- failures (0: no breaker), ARGV[12] = the repo, ARGV[13] = m, ARGV[14] =
-- prefix of the waiters' wake-up lists, ARGV[15] = lease ttl (ms), ARGV[16] =
-- checkpoint fields (JSON object), ARGV[17] = the output tail (text), then a
-- successor id and its queue per eager successor to look at (on success).
-- The run's outcome and time are added to the run's own metric counts of its repo
-- (`m:<repo>`).
-- Returns {'ok', terminal count, level done (0|1), queued successors (JSON)}
-- or {'rejected', 'missing' | 'fence' | 'lease' | 'token' | 'status'}, or {'again'}
-- when this very outcome (token, fence, status) is already recorded.
--
-- Races closed: a holder paused past its TTL writing over the run of the
-- worker that took the todo over (fence, token and lease are checked at the
-- instant of the write, as in checkpoint_write; every resource slot too); the
-- outcome being recorded without its counters or event, or the lease released
-- before the outcome is in (the next holder would find the todo still
-- running); two predecessors finishing at once both, or neither, queueing their
-- common successor (the remaining count and the successor's move to queued are
-- one step, so exactly one finisher sees it reach zero and queues it); and two
-- outcomes of one repo racing on its breaker's count (counted here, with the
-- outcome). The first waiter of each released line is woken in the same step,
-- so the slot goes to it, not to whoever polls first. A holder whose lease
-- expired while the slot went to another todo puts the slot back to its new
-- holder (GETDEL, then SET back, with a full TTL: at worst a dead new holder is
-- taken over one TTL later): it never releases a lease not its own. The resource
-- slots are checked before the repo slot is touched.
local sweep, lease_key = KEYS[2], KEYS[3]
local token, fence, status = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local sweep_id, todo_id, now = ARGV[7], ARGV[8], ARGV[9]
local level = tonumber(ARGV[10])
local brk_n, repo, m, wake = tonumber(ARGV[11]) or 0, ARGV[12], tonumber(ARGV[13]) or 0, ARGV[14]
local ttl = ARGV[15]
local tail = ARGV[17]
local now_n = tonumber(now)
if not TERMINAL[status] then return redis.error_reply('not a terminal status: ' .. status) end

local succ = {}
for i = 18, #ARGV, 2 do succ[#succ + 1] = {ARGV[i], ARGV[i + 1]} end

local mfield = 'm:' .. repo
local got, counters = read_end(sweep, todo_id, level,
  {'status', 't:' .. todo_id, mfield, 'w:' .. todo_id}, succ)
if not got['t:' .. todo_id] then return {'rejected', 'missing'} end
local cp = cp_decode(got['t:' .. todo_id])
if fence < (tonumber(cp.fence) or 0) then return {'rejected', 'fence'} end
if cp.token ~= token then return {'rejected', 'token'} end
if cp_status(cp) == status and tonumber(cp.fence) == fence then
  -- This very finish, asked again (no replica had confirmed it: Transitions.finish):
  -- the checkpoint is written back as it is, so a WAIT after this call covers it.
  redis.call('HSET', sweep, 't:' .. todo_id, got['t:' .. todo_id])
  return {'again'}
end
if cp_status(cp) ~= TS.running then return {'rejected', 'status'} end
for i = 6, 5 + m do
  if redis.call('GET', KEYS[i]) ~= token then return {'rejected', 'lease'} end
end
local held = redis.call('GETDEL', lease_key)
if held ~= token then
  if held then redis.call('SET', lease_key, held, 'PX', ttl) end
  return {'rejected', 'lease'}
end
for i = 6, 5 + m do redis.call('DEL', KEYS[i]) end

load_counters(got, counters)
for field, value in pairs(cjson.decode(ARGV[16])) do
  if value == cjson.null then cp[field] = nil else cp[field] = value end
end
cp.status = status
if tail ~= '' then
  put('o:' .. todo_id, tail)
  cp.has_tail = true
elseif cp.has_tail then
  redis.call('HDEL', sweep, 'o:' .. todo_id)  -- an earlier run's tail, now empty
  cp.has_tail = nil
end
put_cp(todo_id, cp)
-- The run's time and outcome into the run's own metric counts of this repo (the hash's
-- `m:<repo>`, folded into the namespace's counters when the run ends: runtime/metrics.py),
-- in this same read and write: counting costs a finish no command. One field per repo,
-- not one for the run: a finish decodes and encodes its repo's few counts, never the
-- whole run's (at 10,000 repos that was 20,000 keys a finish, 5 ms of the server's time).
local secs = tonumber(cp.duration)
if secs and secs >= 0 then
  local m = jdecode(got[mfield])
  if type(m) ~= 'table' then m = {} end
  local kb = 'dur:' .. repo .. ':' .. status .. ':' .. metric_bucket(secs)
  local ks = 'dur_ms:' .. repo
  m[kb] = (tonumber(m[kb]) or 0) + 1
  m[ks] = (tonumber(m[ks]) or 0) + math.floor(secs * 1000 + 0.5)
  put(mfield, cjson.encode(m))
end
local n, level_done = ended(status, level)

local ready, events = {}, {}
if SUCCESSFUL[status] and #succ > 0 then
  count_down_successors(succ, got, SWEEP_ACTIVE[jdecode(got.status)], sweep_id, todo_id, now_n,
    events, ready)
end
flush(sweep)

local ev = cjson.decode(ARGV[6])
ev.kind, ev.ts, ev.sweep_id, ev.todo_id = 'todo.' .. status, now_n, sweep_id, todo_id
emit(ev)
if status == TS.failed then
  local fails, opened = breaker_failed(KEYS[4], brk_n, now_n)
  if opened then
    local b = event(EV.repo_breaker_open, sweep_id, todo_id, now_n)
    b.repo, b.failures = repo, fails
    emit(b)
  end
elseif status == TS.succeeded and breaker_succeeded(KEYS[4], brk_n) then
  local b = event(EV.repo_breaker_closed, sweep_id, todo_id, now_n)
  b.repo, b.by = repo, 'probe'
  emit(b)
end
for _, q in ipairs(events) do emit(q) end
-- Wake the first waiter of the repo and of each resource released: only when someone
-- waited while this run held its slots, or was in line when it started (the flag:
-- see todo_start.lua); with nobody in line a finish does not look.
if got['w:' .. todo_id] and got['w:' .. todo_id] ~= '' then
  for _, w in ipairs({KEYS[5], unpack(KEYS, 6 + m, 5 + 2 * m)}) do
    local best = redis.call('ZRANGE', w, 0, 0)[1]
    if best then
      redis.call('LPUSH', wake .. best, '1')
      redis.call('PEXPIRE', wake .. best, 10000)
    end
  end
end
return {'ok', n, level_done, cjson.encode(ready)}
