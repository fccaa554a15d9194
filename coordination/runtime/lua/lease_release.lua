-- Release a lease only if the caller still owns it.
-- KEYS[1] = slot key; ARGV[1] = owner token. Returns 1/0.
--
-- Race closed: a late release by a holder whose lease already expired must not
-- delete the lease its successor now holds.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
