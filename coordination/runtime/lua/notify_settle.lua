-- Record one delivery attempt of the notifications outbox.
-- KEYS[1] = deliveries hash, KEYS[2] = due set, KEYS[3] = the outbox lease;
-- ARGV[1] = the deliverer's lease token, ARGV[2] = delivery id, ARGV[3] = its record
-- (JSON, after this attempt), ARGV[4] = when it is due again ('' : done, delivered
-- or given up). Returns 1, or 0 when the caller no longer holds the lease.
--
-- Race closed: a deliverer that lost the outbox (paused past its lease, cut off
-- from Redis) writing an attempt's outcome over the new holder's, or making a
-- delivery the new holder already settled due again: the token is checked and the
-- record and the due set move together.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if not redis.call('HGET', KEYS[1], ARGV[2]) then return 1 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
end
return 1
