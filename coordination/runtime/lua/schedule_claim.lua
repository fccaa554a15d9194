-- Claim one firing of a plan's schedule: the sweep it starts is started by the
-- caller alone.
-- KEYS[1] = the schedules hash (Keys.schedules).
-- ARGV[1] = the field (fired:<PLAN>), ARGV[2] = the firing time (epoch seconds, text),
-- ARGV[3] = the new record (JSON text: at, by, claimed_at, trigger...).
-- Returns 1 if this call claimed the firing, 0 if it (or a later one) was claimed.
--
-- Race closed: two `coord beat` processes that both believe they hold the beat's
-- lock (one paused past the lock's timeout, or on a Redis that failed over and lost
-- the lock) reaching the same firing: the first claims it, the second starts nothing.
-- A firing never moves backwards: a beat whose clock lags cannot claim a firing
-- older than one already claimed.
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local ok, rec = pcall(cjson.decode, held)
  if ok and type(rec) == 'table' and tonumber(rec['at']) and tonumber(rec['at']) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
