-- Compare-and-set a sweep record's status, with the events that tell of it.
-- KEYS[1] = sweep hash, KEYS[2..] = the streams of the events (none: no event)
-- ARGV[1] = new status (raw), ARGV[2] = JSON list of allowed current statuses
-- or "*" for any, ARGV[3] = the events' JSON texts, one a line ('' : none),
-- ARGV[4] = the live channel, ARGV[5 .. 4 + #KEYS - 1] = each stream's maxlen,
-- then field, JSON value pairs written along with the status.
-- Returns 1 if written, 0 if the record is missing or in another state.
--
-- Races closed: two writers (a worker finishing, a cancel, the supervisor)
-- reading the status and then writing would let the later one overwrite a
-- transition it never saw; here only one transition from a state wins. And the
-- events go with the write: an unpause that accepts a halted wave says so
-- (wave.done, then sweep.unpaused) before a pass that sees the wave done can start
-- the next one, and a writer that dies after the write (a pause, an unpause, a
-- sweep's end, a rollback's start) cannot lose what it says.
local status = jget(KEYS[1], 'status')
if status == nil then return 0 end
if ARGV[2] ~= '*' and not in_list(status, ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', jstr(ARGV[1]))
hset_from(KEYS[1], 4 + #KEYS)
emit_prepared(2, 3)
return 1
