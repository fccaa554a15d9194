-- Queue todos of a sweep for dispatch: move them to 'queued' and say so.
-- KEYS[1] = global event stream, KEYS[2] = sweep event stream, KEYS[3] = sweep
-- hash, KEYS[4 ..] = one checkpoint per todo.
-- ARGV[1..3] = event ledger, ARGV[4] = sweep id, ARGV[5] = now (JSON), ARGV[6]
-- = why (the event's 'via'), ARGV[7] = JSON list of the statuses a todo may be
-- queued from, then a todo id and its queue per checkpoint key.
-- Returns the ids it queued (JSON list): send a message for each, and only those.
--
-- Races closed: two senders (a finishing predecessor, a supervisor pass, an
-- unpause) both sending one todo (only the first sees it in a 'from' status),
-- and a todo being queued by a sender that has not seen the sweep paused or
-- ended meanwhile (the sweep's status is read in the same step).
local sweep, now = KEYS[3], ARGV[5]
if not SWEEP_ACTIVE[jget(sweep, 'status')] then return cjson.encode({}) end
local from = {}
for _, s in ipairs(cjson.decode(ARGV[7])) do from[s] = true end
local queued = {}
for i = 4, #KEYS do
  local j = 8 + 2 * (i - 4)
  local todo_id, queue = ARGV[j], ARGV[j + 1]
  local current = todo_known(jget(KEYS[i], 'status'))  -- nil: no such checkpoint
  if current ~= nil and from[current] then
    redis.call('HSET', KEYS[i], 'status', jstr(TS.queued), 'queued_at', now)
    local ev = event(EV.todo_queued, ARGV[4], todo_id, tonumber(now))
    ev.queue, ev.via = queue, ARGV[6]
    emit(ev)
    queued[#queued + 1] = todo_id
  end
end
return cjson.encode(queued)
