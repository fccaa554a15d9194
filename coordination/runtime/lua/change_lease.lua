-- Take every lease slot of a repo for a landing step, and a new fencing number.
-- KEYS = the repo's slot keys, then its fence counter (last).
-- ARGV[1] = owner token, ARGV[2] = ttl in ms.
-- Returns the fence (> 0) when every slot was free and is now this token's, else 0
-- and nothing taken.
--
-- Race closed: a landing pushing a repo while one of its todos runs in the change's
-- worktree (or a second landing of the same repo): all slots or none, in one step,
-- so no todo's start can slip in between two slot grants.
local n = #KEYS - 1
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return redis.call('INCR', KEYS[#KEYS])
