-- Record one step of a landing (a repo landed, reverted...) under its repo lease.
-- KEYS[1] = the change hash, KEYS[2] = the repo's first lease slot, KEYS[3] = its
-- fence counter, KEYS[4..] = the streams of the step's event (none: no event).
-- ARGV[1] = owner token, ARGV[2] = the fence the lease was granted with, ARGV[3] =
-- field, ARGV[4] = value (JSON), ARGV[5] = the event's JSON text ('' : none), ARGV[6]
-- = the live channel, ARGV[7 ..] = each stream's maxlen (EventLog.prepare's
-- Prepared.args).
-- Returns 1 when written, 0 when refused (the lease is not this token's, or a
-- newer grant exists: then nothing is said either).
--
-- Races closed: a landing that lost its lease (paused past its TTL, then resumed
-- by another process) overwriting the steps its successor recorded: the token
-- and the fence are checked at the instant of the write. And a step's event
-- (repo.landed, repo.reverted) written with it: a lander killed after the step and
-- before a second write of its event left the repo landed (or put back) unsaid, and
-- the landing carried on later saw the step done and said nothing either.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local fence = tonumber(redis.call('GET', KEYS[3]) or '0')
if fence > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
emit_prepared(4, 5)
return 1
