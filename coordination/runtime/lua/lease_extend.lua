-- Renew a lease: the repo slot and the resource slots granted with it.
-- KEYS = every key of the lease, ARGV[1] = owner token, ARGV[2] = ttl in ms
-- Returns 1 when every key was still this token's (all renewed), else 0.
--
-- Race closed: an expired holder renewing a key someone else now holds (the
-- token is compared at the instant of the renewal), and a lease renewed only
-- in part: if any of its keys is gone, none is renewed and the holder learns
-- it lost the lease (a resource it no longer holds may be in use elsewhere).
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
