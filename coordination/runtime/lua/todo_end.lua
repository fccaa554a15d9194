-- End not-running todos of a sweep without running them: skipped (a
-- predecessor failed), cancelled (the sweep ended), failed (refused).
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash.
-- ARGV[1..2] = event ledger, ARGV[3] = new status, ARGV[4] = JSON list of the
-- statuses it may come from, ARGV[5] = sweep id, ARGV[6] = now (JSON),
-- ARGV[7] = event fields (JSON object; its 'reason' is also written to the
-- checkpoint), ARGV[8] = the sweep's own move ('' : none; else a JSON object:
-- "to", the status, "from", the statuses it may move from, "fields", record
-- field -> its value as the record keeps it, JSON text), ARGV[9] = an event of
-- one of these todos, its JSON text ('' : none), written after theirs if this call
-- ended that todo, then per todo: its id, its level (-1: none) and its outcome seal
-- (JSON, '' : none; Lua cannot compute an HMAC, so the caller seals each todo's
-- outcome, and it is written with the status it seals).
-- Returns {terminal count, ended ids (JSON), levels that just ended (JSON),
-- 1 if the sweep moved (or no move was asked), 0 if its status was not one of
-- "from": then nothing is written}.
--
-- Races closed: a todo being skipped or cancelled while a worker starts it (the
-- status is compared and moved in one step, so it is either started or ended,
-- never both), and an ended todo missing from the sweep's counters (the
-- counters move in the same step as the status). With the sweep's move: a
-- sweep ended (cancelled, past its deadline) with its todos that had not started
-- still pending, read so by anyone between two writes, and left so for good by
-- an ender that died between them; and two enders both ending it. With the
-- event of ARGV[9]: what the ending says besides (a gate's gate.expired) lost by
-- a caller that died after the ending, or said by two callers that both tried it.
local sweep, new, now = KEYS[2], ARGV[3], ARGV[6]
if not TERMINAL[new] then return redis.error_reply('not a terminal status: ' .. new) end
local now_n = tonumber(now)
local from = {}
for _, s in ipairs(cjson.decode(ARGV[4])) do from[s] = true end
local reason = cjson.decode(ARGV[7]).reason
if reason == cjson.null then reason = nil end
local todos, levels, seals = {}, {}, {}
for j = 10, #ARGV, 3 do
  todos[#todos + 1] = ARGV[j]
  levels[#levels + 1] = tonumber(ARGV[j + 1])
  seals[#seals + 1] = ARGV[j + 2]
end
local counters = counter_names(levels)
local names = {'status'}
for _, c in ipairs(counters) do names[#names + 1] = c end
for _, t in ipairs(todos) do names[#names + 1] = 't:' .. t end
local got = hmget(sweep, tally_names(names, todos))
load_tally(got)
local status = jdecode(got.status)
if status == nil then return {0, '[]', '[]', 0} end  -- no such sweep
if ARGV[8] ~= '' then
  local move = cjson.decode(ARGV[8])
  local may = false
  for _, s in ipairs(move.from) do may = may or s == status end
  if not may then return {0, '[]', '[]', 0} end
  redis.call('HSET', sweep, 'status', jstr(move.to))
  for name, value in pairs(move.fields) do redis.call('HSET', sweep, name, value) end
end
load_counters(got, counters)
local n = COUNTERS.terminal
local done, ended_levels = {}, {}
for i, todo_id in ipairs(todos) do
  local cp = cp_decode(got['t:' .. todo_id])
  if from[cp_status(cp)] then
    cp.status, cp.reason, cp.finished_at, cp.exit_code = new, reason, now_n, nil
    if seals[i] ~= '' then cp.outcome_seal = cjson.decode(seals[i]) else cp.outcome_seal = nil end
    put_cp(todo_id, cp)
    local level_done
    n, level_done = ended(new, levels[i])
    if level_done == 1 then ended_levels[#ended_levels + 1] = levels[i] end
    done[#done + 1] = todo_id
  end
end
flush(sweep)
for _, todo_id in ipairs(done) do
  local ev = cjson.decode(ARGV[7])
  ev.kind, ev.ts, ev.sweep_id, ev.todo_id = 'todo.' .. new, now_n, ARGV[5], todo_id
  emit(ev)
end
if ARGV[9] ~= '' then
  local about = cjson.decode(ARGV[9]).todo_id
  for _, todo_id in ipairs(done) do
    if todo_id == about then emit_text(ARGV[9]) end
  end
end
local d, l = '[]', '[]'
if #done > 0 then d = cjson.encode(done) end
if #ended_levels > 0 then l = cjson.encode(ended_levels) end
return {n, d, l, 1}
