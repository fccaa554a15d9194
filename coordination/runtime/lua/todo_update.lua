-- Compare-and-set of todos' checkpoints in their sweep's hash, with the events that
-- tell of it.
-- KEYS[1] = sweep hash, KEYS[2..] = the streams of the events (none: no event)
-- ARGV[1] = JSON list of todo ids, ARGV[2] = new status ('' : leave it), ARGV[3]
-- = JSON list of the statuses a todo may be in or "*" for any, ARGV[4] =
-- expected token or "" for no check, ARGV[5] = fields (JSON object; null
-- removes a field), ARGV[6] = the events' JSON texts, one a line ('' : none),
-- ARGV[7] = the live channel, ARGV[8 ..] = each stream's maxlen.
-- Returns how many todos were written (0 if the sweep is missing, or every todo
-- in another state); the events are written only if one was.
--
-- Races closed: two writers (a worker finishing, a cancel, the supervisor)
-- reading the status and then writing would let the later one overwrite a
-- transition it never saw; here only one transition from a state wins. A
-- checkpoint is one field, so the fields not named are kept as they are. And
-- the event goes with the write: a writer that dies after it (a gate failed on a
-- refused decision, then todo.failed) cannot lose what it says.
local todos = cjson.decode(ARGV[1])
local names = {'status'}
for _, t in ipairs(todos) do names[#names + 1] = 't:' .. t end
local got = hmget(KEYS[1], tally_names(names, todos))
load_tally(got)
if got.status == false then return 0 end
local fields = cjson.decode(ARGV[5])
local n = 0
for _, t in ipairs(todos) do
  local cp = cp_decode(got['t:' .. t])
  if (ARGV[3] == '*' or in_list(cp_status(cp), ARGV[3]))
      and (ARGV[4] == '' or cp.token == ARGV[4]) then
    for field, value in pairs(fields) do
      if value == cjson.null then cp[field] = nil else cp[field] = value end
    end
    if ARGV[2] ~= '' then cp.status = todo_known(ARGV[2]) end
    put_cp(t, cp)
    n = n + 1
  end
end
flush(KEYS[1])
if n > 0 then emit_prepared(2, 6) end
return n
