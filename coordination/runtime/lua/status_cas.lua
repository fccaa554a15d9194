-- Compare-and-set a sweep record's status, with the events that tell of it.
-- KEYS[1] = sweep hash, KEYS[2] = the set of active sweeps, KEYS[3..] = the streams
-- of the events (none: no event)
-- ARGV[1] = new status (raw), ARGV[2] = JSON list of allowed current statuses
-- or "*" for any, ARGV[3] = the sweep's id, ARGV[4] = the events' JSON texts, one a
-- line ('' : none), ARGV[5] = the live channel, ARGV[6 .. 5 + #KEYS - 2] = each
-- stream's maxlen, then field, JSON value pairs written along with the status.
-- Returns 1 if written, 0 if the record is missing or in another state.
--
-- Races closed: two writers (a worker finishing, a cancel, the supervisor)
-- reading the status and then writing would let the later one overwrite a
-- transition it never saw; here only one transition from a state wins. And the
-- events go with the write: an unpause that accepts a halted wave says so
-- (wave.done, then sweep.unpaused) before a pass that sees the wave done can start
-- the next one, and a writer that dies after the write (a pause, an unpause, a
-- sweep's end, a rollback's start) cannot lose what it says. And a sweep moved to a
-- live status is listed active in the same step: a writer that dies before it listed
-- the sweep (a resume, a rollback, before their first todos were sent) left it live
-- where no supervision pass looks, for good.
local status = jget(KEYS[1], 'status')
if status == nil then return 0 end
if ARGV[2] ~= '*' and not in_list(status, ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', jstr(ARGV[1]))
if SWEEP_LIVE[ARGV[1]] then redis.call('SADD', KEYS[2], ARGV[3]) end
hset_from(KEYS[1], 4 + #KEYS)
emit_prepared(3, 4)
return 1
