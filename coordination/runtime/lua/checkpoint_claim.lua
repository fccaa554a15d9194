-- Claim a todo's checkpoint for a lease holder before running it.
-- KEYS[1] = sweep hash, KEYS[2] = claimer's lease key
-- ARGV[1] = token, ARGV[2] = fence, ARGV[3] = lease key (as stored),
-- ARGV[4] = worker (JSON), ARGV[5] = now (JSON),
-- ARGV[6] = runs lost to dying workers after which the todo is poison (0: no limit),
-- ARGV[7] = todo id
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
local got = hmget(KEYS[1], {'status', 't:' .. ARGV[7]})
if got.status == false then return 'terminal' end  -- no such sweep
local cp = cp_decode(got['t:' .. ARGV[7]])
local lost = cp.lost_runs
local result = claim(cp, ARGV[3], ARGV[1], tonumber(ARGV[2]), cjson.decode(ARGV[4]),
  tonumber(ARGV[5]), tonumber(ARGV[6] or '0') or 0)
-- Written when claimed (or poisoned), and when a takeover counted a lost run it
-- then could not make (a stale fence or lease): the count stays, as before.
if result == 'claimed' or result == 'taken_over' or result == 'poisoned' or cp.lost_runs ~= lost then
  put_cp(ARGV[7], cp)
  flush(KEYS[1])
end
return result
