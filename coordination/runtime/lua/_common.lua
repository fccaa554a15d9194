-- Helpers shared by every coord script (prepended by client.script_text, after
-- the status tables generated from coordination/status.py: TS, SS, EV, TERMINAL...).
-- Hash fields hold JSON text per field, so the scripts decode before comparing.

local function jdecode(raw)
  if raw == false or raw == nil then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok then return raw end
  if v == cjson.null then return nil end
  return v
end

local function jget(key, field)
  return jdecode(redis.call('HGET', key, field))
end

local function jstr(s)
  return cjson.encode(s)
end

local function in_list(value, json_list)
  if value == nil then return false end
  for _, v in ipairs(cjson.decode(json_list)) do
    if v == value then return true end
  end
  return false
end

-- HSET key f1 v1 f2 v2 ... from ARGV[first..]; values are JSON text already.
local function hset_from(key, first)
  if #ARGV >= first + 1 then
    redis.call('HSET', key, unpack(ARGV, first))
  end
end

-- The reason a poison todo ends failed with (checkpoint_claim, todo_lost).
local function poison_reason(lost, worker)
  local r = string.format('its worker died %d times while running it', lost)
  if worker then r = r .. ' (last: ' .. tostring(worker) .. ')' end
  return r
end

-- The event ledger, as every transition script receives it: KEYS[1] = global
-- stream, KEYS[2] = the sweep's stream; ARGV[1] = global maxlen, ARGV[2] = sweep
-- maxlen, ARGV[3] = pub/sub channel. (Same layout as event_emit.lua.)
local function emit(ev)
  local text = cjson.encode(ev)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', text)
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', text)
  redis.call('PUBLISH', ARGV[3], '{"id":' .. jstr(id) .. ',' .. string.sub(text, 2))
  return id
end

local function event(kind, sweep_id, todo_id, now)
  return {kind = kind, ts = now, sweep_id = sweep_id, todo_id = todo_id}
end

-- Bookkeeping of a todo that just reached a terminal status, in the sweep hash:
-- the terminal count (compared with the sweep's size to see its end) and, for
-- the levels strategy (level >= 0), the level's count of todos left and of
-- successes. Returns the terminal count and whether the level just ended.
local function ended(sweep_key, status, level)
  local n = redis.call('HINCRBY', sweep_key, 'terminal', 1)
  local level_done = 0
  if level ~= nil and level >= 0 then
    if SUCCESSFUL[status] then
      redis.call('HINCRBY', sweep_key, 'level_ok:' .. level, 1)
    end
    if redis.call('HINCRBY', sweep_key, 'level_left:' .. level, -1) == 0 then
      level_done = 1
    end
  end
  return n, level_done
end

-- Claim a todo's checkpoint for a lease holder (checkpoint_claim, todo_start).
-- cp = checkpoint key, lease_key = the claimer's lease (as stored), worker and
-- now are JSON text, max_lost = runs lost to dying workers after which the todo
-- is poison (0: no limit). Returns 'claimed' | 'taken_over' | 'busy' |
-- 'terminal' | 'stale' | 'poisoned'. Races closed: see checkpoint_claim.lua.
local function claim(cp, lease_key, token, fence, worker, now, max_lost)
  if redis.call('EXISTS', cp) == 0 then return 'terminal' end
  local status = todo_known(jget(cp, 'status'))
  if TERMINAL[status] then return 'terminal' end
  local result = 'claimed'
  if status == TS.running then
    local prev_key = jget(cp, 'lease_key')
    local prev_token = jget(cp, 'token')
    if prev_token == token then return 'claimed' end
    if prev_key and prev_token and redis.call('GET', prev_key) == prev_token then
      return 'busy'
    end
    result = 'taken_over'
    local lost = (tonumber(jget(cp, 'lost_runs') or 0) or 0) + 1
    redis.call('HSET', cp, 'lost_runs', string.format('%d', lost))
    if max_lost > 0 and lost >= max_lost then
      redis.call('HSET', cp,
        'status', jstr(TS.failed),
        'reason', jstr(poison_reason(lost, jget(cp, 'worker'))),
        'finished_at', now)
      return 'poisoned'
    end
  elseif not NOT_STARTED[status] then
    return 'terminal'  -- a status with no way to running (todo_known let it through)
  end
  local stored = tonumber(jget(cp, 'fence') or 0) or 0
  if fence < stored then return 'stale' end
  -- A claimer whose own lease is already gone must not start work.
  if redis.call('GET', lease_key) ~= token then return 'stale' end
  local attempts = tonumber(jget(cp, 'attempts') or 0) or 0
  redis.call('HSET', cp,
    'status', jstr(TS.running),
    'token', jstr(token),
    'fence', string.format('%d', fence),
    'lease_key', jstr(lease_key),
    'worker', worker,
    'started_at', now,
    'attempts', string.format('%d', attempts + 1),
    'finished_at', 'null',
    'exit_code', 'null')
  return result
end

-- A repo's circuit breaker (hash: state, failures, opened_at, probe, probe_until).
-- n = consecutive failed or lost todos that open it (0: the repo has no breaker).
-- A failure counts one; it opens a closed breaker at n, and re-opens a half-open
-- one at once (its probe failed). Returns the failure count and whether it opened.
local function breaker_failed(key, n, now)
  if n == nil or n <= 0 then return 0, false end
  local fails = redis.call('HINCRBY', key, 'failures', 1)
  local state = redis.call('HGET', key, 'state') or BS.closed
  if state == BS.half_open or (state == BS.closed and fails >= n) then
    redis.call('HSET', key, 'state', BS.open, 'opened_at', now, 'probe', '', 'probe_until', '0')
    return fails, true
  end
  return fails, false
end

-- A todo of the repo succeeded: the count starts again and the breaker closes.
-- Returns true when it was open or half-open (it closed now).
local function breaker_succeeded(key, n)
  if n == nil or n <= 0 then return false end
  local state = redis.call('HGET', key, 'state') or BS.closed
  redis.call('HSET', key, 'failures', '0', 'state', BS.closed, 'probe', '', 'probe_until', '0')
  return state ~= BS.closed
end
