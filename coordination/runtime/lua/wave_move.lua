-- Move a sweep's current wave on (started -> soaking -> done, or halted), once, and
-- write the event that says so in the same step.
-- KEYS[1] = sweep hash, KEYS[2..] = the streams of the event (none: no event).
-- ARGV[1] = the wave index the caller saw (JSON text, '' : none yet), ARGV[2] = the
-- wave state it saw ('' : none yet), ARGV[3] = the events' JSON texts, one a line
-- ('' : none), ARGV[4] = the live channel, ARGV[5 .. 4 + #KEYS - 1] = each stream's
-- maxlen, then record field names and their new values (JSON text each, as the record keeps them).
-- Returns 1 if it moved the wave, 0 if the wave was no longer where the caller saw it.
--
-- Races closed: the processes that end a wave's last todos (two workers, a worker
-- and a supervision pass) each seeing the wave over and each soaking it, halting it
-- or starting the next one: only the first moves it, and only it says so. And the
-- event is written with the move: a pass that sees the wave moved and moves it on
-- (wave.done, then the next wave.started) can no longer say so before its mover did.
local got = redis.call('HMGET', KEYS[1], 'status', 'wave', 'wave_state')
if not got[1] then return 0 end
local wave = got[2]
if not wave or wave == 'null' then wave = '' end  -- none yet, or cleared by a resume
local state = jdecode(got[3]) or ''
if wave ~= ARGV[1] or state ~= ARGV[2] then return 0 end
hset_from(KEYS[1], 4 + #KEYS)
emit_prepared(2, 3)
return 1
