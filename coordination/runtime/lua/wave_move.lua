-- Move a sweep's current wave on (started -> soaking -> done, or halted), once.
-- KEYS[1] = sweep hash.
-- ARGV[1] = the wave index the caller saw (JSON text, '' : none yet), ARGV[2] = the
-- wave state it saw ('' : none yet), then record field names and their new values
-- (JSON text each, as the record keeps them).
-- Returns 1 if it moved the wave, 0 if the wave was no longer where the caller saw it.
--
-- Race closed: the processes that end a wave's last todos (two workers, a worker
-- and a supervision pass) each seeing the wave over and each soaking it, halting it
-- or starting the next one: only the first moves it, and only it says so.
local got = redis.call('HMGET', KEYS[1], 'status', 'wave', 'wave_state')
if not got[1] then return 0 end
local wave = got[2] or ''
local state = jdecode(got[3]) or ''
if wave ~= ARGV[1] or state ~= ARGV[2] then return 0 end
hset_from(KEYS[1], 3)
return 1
