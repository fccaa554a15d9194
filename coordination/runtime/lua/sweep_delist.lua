-- Take a sweep off the set of active sweeps (the ones the supervision passes look at),
-- unless it is live again, and say its end: the event its ender stored in its record
-- with the move that ended it (`ending`), written here and dropped from the record.
-- KEYS[1] = sweep hash, KEYS[2] = the set of active sweeps, KEYS[3..] = the streams of
-- the sweep's own events (none: say nothing); ARGV[1] = the sweep's id, ARGV[2] = the
-- live channel, ARGV[3 ..] = each stream's maxlen.
-- Returns 1 if it was taken off, 0 if not (live, or not listed).
--
-- Races closed: an ender, or a pass that read the sweep ended, taking it off after a
-- resume, a rollback or an unpause had listed it live again (status_cas.lua lists a
-- sweep in the status write that makes it live) left a live sweep where no pass looks.
-- And a sweep's end is said exactly once, after what its ending wrote before it (the
-- cancels' level.done): by whoever takes it off, its ender or, if the ender died after
-- its move, a supervision pass (it stays listed until then). Said with the move, the end
-- event came before those; said after the move by a separate write, an ender that died
-- in between lost it.
local status = jget(KEYS[1], 'status')
if status ~= nil and SWEEP_LIVE[status] then return 0 end
local off = redis.call('SREM', KEYS[2], ARGV[1])
if off == 1 and #KEYS > 2 then
  local ending = jget(KEYS[1], 'ending')
  if ending ~= nil then
    redis.call('HDEL', KEYS[1], 'ending')
    emit_texts(3, ending, 2)
  end
end
return off
