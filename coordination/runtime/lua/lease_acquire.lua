-- Grant the first free slot of a repo's lease and number the grant.
-- KEYS[1] = fence counter, KEYS[2..n+1] = the repo's slot keys
-- ARGV[1] = owner token, ARGV[2] = ttl in ms
-- Returns {slot, fence} or false.
--
-- Race closed: SET NX and INCR in one step, so fences are handed out in grant
-- order; a grant can never carry a lower fence than a grant that happened
-- before it, which is what lets checkpoint writes compare fences.
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local fence = redis.call('INCR', KEYS[1])
    return {i - 2, fence}
  end
end
return false
