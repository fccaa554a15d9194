-- Queue todos of a sweep for dispatch: move them to 'queued' and say so.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash.
-- ARGV[1..2] = event ledger, ARGV[3] = sweep id, ARGV[4] = now (JSON), ARGV[5]
-- = why (the event's 'via'), ARGV[6] = JSON list of the statuses a todo may be
-- queued from, then a todo id and its queue per todo.
-- Returns the ids it queued (JSON list): send a message for each, and only those.
--
-- Races closed: two senders (a finishing predecessor, a supervisor pass, an
-- unpause) both sending one todo (only the first sees it in a 'from' status),
-- and a todo being queued by a sender that has not seen the sweep paused or
-- ended meanwhile (the sweep's status is read in the same step).
local sweep, now_n = KEYS[2], tonumber(ARGV[4])
local from = {}
for _, s in ipairs(cjson.decode(ARGV[6])) do from[s] = true end
local todos, queues = {}, {}
for j = 7, #ARGV, 2 do
  todos[#todos + 1] = ARGV[j]
  queues[#queues + 1] = ARGV[j + 1]
end
local names = {'status'}
for _, t in ipairs(todos) do names[#names + 1] = 't:' .. t end
local got = hmget(sweep, names)
if not SWEEP_ACTIVE[jdecode(got.status)] then return '[]' end
local queued = {}
for i, todo_id in ipairs(todos) do
  local cp = cp_decode(got['t:' .. todo_id])
  if from[cp_status(cp)] then
    cp.status, cp.queued_at = TS.queued, now_n
    put_cp(todo_id, cp)
    queued[#queued + 1] = i
  end
end
flush(sweep)
local ids = {}
for _, i in ipairs(queued) do
  local ev = event(EV.todo_queued, ARGV[3], todos[i], now_n)
  ev.queue, ev.via = queues[i], ARGV[5]
  emit(ev)
  ids[#ids + 1] = todos[i]
end
if #ids == 0 then return '[]' end
return cjson.encode(ids)
