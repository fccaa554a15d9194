-- Say that a level of a sweep's run ended (level.done), once, and mark it said.
-- KEYS[1] = sweep hash, KEYS[2..] = the streams of the event.
-- ARGV[1] = the level's index, ARGV[2] = the run the caller's level is of, ARGV[3] =
-- the event's JSON text, ARGV[4] = the live channel, ARGV[5 ..] = each stream's maxlen
-- (EventLog.prepare's Prepared.args).
-- Returns 1 if it said it, 0 if it was said already (or the sweep is gone).
--
-- The mark, level_said:<k>, is written 0 with the run's counters (SweepSpec.counters)
-- and set 1 here; a run recorded before it has none: said as before, unmarked, and a
-- caller of another run than the record's says its own run's level unmarked too.
--
-- Races closed: the process that ended a level (the script that counted its last
-- todo) said it in a second step, and one that died in between left it unsaid for
-- good. Now a supervision pass finds a level ended (level_left:<k> 0) and not said,
-- and says it; the marker makes the pass and a late ender say it once between them.
local got = redis.call('HMGET', KEYS[1], 'status', 'run', 'level_said:' .. ARGV[1])
if not got[1] then return 0 end
local said = got[3]
if said and (jdecode(got[2]) or 0) == tonumber(ARGV[2]) then
  if said == '1' then return 0 end
  redis.call('HSET', KEYS[1], 'level_said:' .. ARGV[1], '1')
end
emit_prepared(2, 3)
return 1
