-- Renew a lease only if the caller still owns it.
-- KEYS[1] = slot key; ARGV[1] = owner token, ARGV[2] = ttl in ms. Returns 1/0.
--
-- Race closed: a GET then PEXPIRE from the client could renew a lease that
-- expired and was granted to someone else in between.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
