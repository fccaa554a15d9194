-- End not-running todos of a sweep without running them: skipped (a
-- predecessor failed), cancelled (the sweep ended), failed (refused).
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4 ..] = one checkpoint per todo.
-- ARGV[1..3] = event ledger, ARGV[4] = new status, ARGV[5] = JSON list of the
-- statuses it may come from, ARGV[6] = sweep id, ARGV[7] = now (JSON),
-- ARGV[8] = event fields (JSON object; its 'reason' is also written to the
-- checkpoint), then a todo id and its level (-1: none) per checkpoint key.
-- Returns {terminal count, ended ids (JSON), levels that just ended (JSON)}.
--
-- Races closed: a todo being skipped or cancelled while a worker starts it (the
-- status is compared and moved in one step, so it is either started or ended,
-- never both), and an ended todo missing from the sweep's counters (the
-- counters move in the same step as the status).
local sweep, new, now = KEYS[3], ARGV[4], ARGV[7]
if not TERMINAL[new] then return redis.error_reply('not a terminal status: ' .. new) end
local from = {}
for _, s in ipairs(cjson.decode(ARGV[5])) do from[s] = true end
local extra = cjson.decode(ARGV[8])
local reason = extra.reason
local n = tonumber(jget(sweep, 'terminal') or 0) or 0
local done, levels = {}, {}
for i = 4, #KEYS do
  local j = 9 + 2 * (i - 4)
  local todo_id, level = ARGV[j], tonumber(ARGV[j + 1])
  local current = todo_known(jget(KEYS[i], 'status'))  -- nil: no such checkpoint
  if current ~= nil and from[current] then
    redis.call('HSET', KEYS[i], 'status', jstr(new), 'reason', jstr(reason), 'finished_at', now)
    local level_done
    n, level_done = ended(sweep, new, level)
    if level_done == 1 then levels[#levels + 1] = level end
    local ev = cjson.decode(ARGV[8])
    ev.kind, ev.ts, ev.sweep_id, ev.todo_id = 'todo.' .. new, tonumber(now), ARGV[6], todo_id
    emit(ev)
    done[#done + 1] = todo_id
  end
end
return {n, cjson.encode(done), cjson.encode(levels)}
