-- Give a lease back: every key of it (repo slot, resource slots) still held by
-- the token. KEYS = the lease's keys, ARGV[1] = owner token.
-- Returns how many keys were released (0: none was this token's any more).
--
-- Race closed: a holder whose lease expired deleting the slot of whoever was
-- granted it since (the token is compared at the instant of the delete).
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
