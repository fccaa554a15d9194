-- Claim a todo's checkpoint for a lease holder before running it.
-- KEYS[1] = checkpoint hash, KEYS[2] = claimer's lease key
-- ARGV[1] = token, ARGV[2] = fence, ARGV[3] = lease key (as stored),
-- ARGV[4] = worker (JSON), ARGV[5] = now (JSON),
-- ARGV[6] = runs lost to dying workers after which the todo is poison (0: no limit)
-- Returns 'claimed' | 'taken_over' | 'busy' | 'terminal' | 'stale' | 'poisoned'.
--
-- Races closed: two deliveries of one todo (a redelivered task, the
-- supervisor's re-dispatch) both finding it pending and both running it; and a
-- takeover of a todo whose holder is in fact still alive. The previous holder's
-- lease key is read here, inside the script, so it cannot be renewed or
-- expire between the check and the takeover. (It is a key not passed in KEYS:
-- fine on a single Redis; a cluster would need the lease in the sweep's slot.)
--
-- Also closed here: a poison todo (one whose command kills its worker) being
-- taken over forever. Each takeover counts a lost run in the same step that
-- sees the dead holder; at the limit the todo ends 'failed' instead of running.
-- And a claim retried by the client after its reply was lost finds its own
-- token and answers 'claimed' again instead of 'busy'.
-- No checkpoint (sweep deleted, todo not in it): nothing to run, like a finished one.
if redis.call('EXISTS', KEYS[1]) == 0 then return 'terminal' end
local status = jget(KEYS[1], 'status')
if TERMINAL[status] then return 'terminal' end

local result = 'claimed'
if status == 'running' then
  local prev_key = jget(KEYS[1], 'lease_key')
  local prev_token = jget(KEYS[1], 'token')
  if prev_token == ARGV[1] then return 'claimed' end
  if prev_key and prev_token and redis.call('GET', prev_key) == prev_token then
    return 'busy'
  end
  result = 'taken_over'
  local lost = (tonumber(jget(KEYS[1], 'lost_runs') or 0) or 0) + 1
  redis.call('HSET', KEYS[1], 'lost_runs', string.format('%d', lost))
  local limit = tonumber(ARGV[6] or '0') or 0
  if limit > 0 and lost >= limit then
    redis.call('HSET', KEYS[1],
      'status', jstr('failed'),
      'reason', jstr(poison_reason(lost, jget(KEYS[1], 'worker'))),
      'finished_at', ARGV[5])
    return 'poisoned'
  end
elseif status ~= 'pending' and status ~= 'queued' then
  -- Unknown status: refuse rather than guess.
  return 'terminal'
end

local fence = tonumber(ARGV[2])
local stored = tonumber(jget(KEYS[1], 'fence') or 0) or 0
if fence < stored then return 'stale' end
-- A claimer whose own lease is already gone must not start work.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end

local attempts = tonumber(jget(KEYS[1], 'attempts') or 0) or 0
redis.call('HSET', KEYS[1],
  'status', jstr('running'),
  'token', jstr(ARGV[1]),
  'fence', string.format('%d', fence),
  'lease_key', jstr(ARGV[3]),
  'worker', ARGV[4],
  'started_at', ARGV[5],
  'attempts', string.format('%d', attempts + 1),
  'finished_at', 'null',
  'exit_code', 'null')
return result
