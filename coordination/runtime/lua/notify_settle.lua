-- Record one delivery attempt of the notifications outbox, and move its lane on.
-- KEYS[1] = deliveries hash, KEYS[2] = due set, KEYS[3] = the outbox lease, KEYS[4] =
-- the lanes set, KEYS[5] = the delivery's lane's set; ARGV[1] = the deliverer's lease
-- token, ARGV[2] = delivery id, ARGV[3] = its record (JSON, after this attempt; ''
-- : the record is gone, take the id out of the lane), ARGV[4] = when it is due again
-- ('' : done, delivered or given up), ARGV[5] = the lane, ARGV[6] = now.
-- Returns 1, or 0 when the caller no longer holds the lease.
--
-- Races closed: a deliverer that lost the outbox (paused past its lease, cut off
-- from Redis) writing an attempt's outcome over the new holder's, or making a
-- delivery the new holder already settled due again: the token is checked and the
-- record, the due set and the lane move together. And a lane going on past a
-- delivery that failed: the lane is due again only when that delivery is (its
-- webhook's later deliveries wait behind it, in event order).
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local id = ARGV[2]
local function done()
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[5], id)
  if redis.call('ZCARD', KEYS[5]) == 0 then
    redis.call('ZREM', KEYS[4], ARGV[5])
  else
    redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])  -- the next one is due now
  end
end
if ARGV[3] == '' or not redis.call('HGET', KEYS[1], id) then
  done()
  return 1
end
redis.call('HSET', KEYS[1], id, ARGV[3])
if ARGV[4] == '' then
  done()
else
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
end
return 1
