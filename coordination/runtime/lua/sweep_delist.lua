-- Take a sweep off the set of active sweeps (the ones the supervision passes look at),
-- unless it is live again.
-- KEYS[1] = sweep hash, KEYS[2] = the set of active sweeps; ARGV[1] = the sweep's id.
-- Returns 1 if it was taken off, 0 if not (live, or not listed).
--
-- Race closed: an ender, or a pass that read the sweep ended, taking it off after a
-- resume, a rollback or an unpause had listed it live again (status_cas.lua lists a
-- sweep in the status write that makes it live) left a live sweep where no pass looks.
local status = jget(KEYS[1], 'status')
if status ~= nil and SWEEP_LIVE[status] then return 0 end
return redis.call('SREM', KEYS[2], ARGV[1])
