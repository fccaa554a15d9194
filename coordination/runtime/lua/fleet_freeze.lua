-- Freeze the fleet, or end its freeze, and write the event that says so in the same
-- step (`coord freeze` / `coord unfreeze`: fleet.frozen / fleet.unfrozen, webhooks).
-- KEYS[1] = the freeze record (Keys.freeze), KEYS[2..] = the streams of the event.
-- ARGV[1] = 'set' or 'clear'; ARGV[2] = set: the new record (JSON text); clear: the
-- record the caller read and ends (its event names who froze it and for how long);
-- ARGV[3] = the event's JSON text, ARGV[4] = the live channel, ARGV[5 ..] = each
-- stream's maxlen (EventLog.prepare's Prepared.args).
-- Returns {1, record}: it froze (the new record) or unfroze (the one it ended);
-- {0, record}: nothing changed: set: the freeze already in force; clear: the record
-- now ('' : not frozen): a caller that read another one reads again.
--
-- Races closed: the move written and then its event by a second call lost the event
-- to a `coord freeze` killed in between (a fleet frozen with no word to the team, or
-- unfrozen in silence). Two people freezing at once leave the first's record and one
-- fleet.frozen (SET NX); two unfreezes at once end it once and say it once, each naming
-- the freeze it ended (compare and delete: a freeze set again between the caller's read
-- and its clear is not ended under the old one's name).
if ARGV[1] == 'set' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
    emit_prepared(2, 3)
    return {1, ARGV[2]}
  end
  return {0, redis.call('GET', KEYS[1])}
end
local held = redis.call('GET', KEYS[1])
if not held then return {0, ''} end
if held ~= ARGV[2] then return {0, held} end
redis.call('DEL', KEYS[1])
emit_prepared(2, 3)
return {1, held}
