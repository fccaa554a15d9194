-- Mark what a sweep says is overdue (its todos, or its plan), once each, and write the
-- event of each one this call marked (todo.overdue, plan.overdue) in the same step; or
-- (KEYS[1] the namespace's overdue hash) the todos past due that no sweep runs, said by
-- `coord beat`.
-- KEYS[1] = sweep hash (or the overdue hash), KEYS[2..] = the streams of the events.
-- ARGV[1] = the time the marks keep (text), ARGV[2] = the marks' field names (JSON
-- list), ARGV[3] = their events' JSON texts, one a line, in the same order, ARGV[4] =
-- the live channel, ARGV[5 ..] = each stream's maxlen (EventLog.prepare's Prepared.args).
-- Returns the 1-based positions in ARGV[2] of the fields this call marked (JSON list).
--
-- Races closed: two supervision passes (or two beats, one taking over) seeing a todo
-- overdue at once each saying it (HSETNX: the one that marks it says it); and a pass that marked a todo and died
-- before its event (written by a second call) left it marked and never said. The mark
-- and its event are one step now: a pass dying after it has said it, once.
local fields = cjson.decode(ARGV[2])
local texts = {}
for text in string.gmatch(ARGV[3], '[^\n]+') do texts[#texts + 1] = text end
local marked, told = {}, {}
for i, f in ipairs(fields) do
  if redis.call('HSETNX', KEYS[1], f, ARGV[1]) == 1 then
    marked[#marked + 1] = i
    told[#told + 1] = texts[i]
  end
end
if #told == 0 then return '[]' end
for i = 1, #told, EVENTS_PER_MESSAGE do  -- a message of at most that many (as emit's)
  emit_texts(2, table.concat(told, '\n', i, math.min(i + EVENTS_PER_MESSAGE - 1, #told)), 4)
end
return cjson.encode(marked)
