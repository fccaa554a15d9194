-- Queue todos of a sweep for dispatch: move them to 'queued' and say so.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash.
-- ARGV[1..2] = event ledger, ARGV[3] = sweep id, ARGV[4] = now (JSON), ARGV[5]
-- = why (the event's 'via'), ARGV[6] = JSON list of the statuses a todo may be
-- queued from, ARGV[7] = cap (0: none), ARGV[8] = JSON list of the todos counted
-- against the cap (a wave's), then a todo id and its queue per todo.
-- Returns the ids it queued (JSON list): send a message for each, and only those.
--
-- Races closed: two senders (a finishing predecessor, a supervisor pass, an
-- unpause) both sending one todo (only the first sees it in a 'from' status),
-- and a todo being queued by a sender that has not seen the sweep paused or
-- ended meanwhile (the sweep's status is read in the same step). With a cap (a
-- wave's max_parallel): two senders topping a wave up at once both seeing a free
-- place and together going past it (the wave's todos in flight are counted in the
-- same step as the queueing).
local sweep, now_n = KEYS[2], tonumber(ARGV[4])
local from = {}
for _, s in ipairs(cjson.decode(ARGV[6])) do from[s] = true end
local cap = tonumber(ARGV[7]) or 0
local counted = {}
if cap > 0 then counted = cjson.decode(ARGV[8]) end
local todos, queues = {}, {}
for j = 9, #ARGV, 2 do
  todos[#todos + 1] = ARGV[j]
  queues[#queues + 1] = ARGV[j + 1]
end
local names = {'status'}
for _, t in ipairs(todos) do names[#names + 1] = 't:' .. t end
for _, t in ipairs(counted) do names[#names + 1] = 't:' .. t end
local got = hmget(sweep, tally_names(names, todos))
load_tally(got)
if not SWEEP_ACTIVE[jdecode(got.status)] then return '[]' end
local room = -1  -- no cap
if cap > 0 then
  local busy = 0
  for _, t in ipairs(counted) do
    local st = cp_status(cp_decode(got['t:' .. t]))
    if st == TS.queued or st == TS.running or st == TS.held then busy = busy + 1 end
  end
  room = cap - busy
end
local queued = {}
for i, todo_id in ipairs(todos) do
  local cp = cp_decode(got['t:' .. todo_id])
  if room == 0 then break end
  if from[cp_status(cp)] then
    room = room - 1
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
