-- Add counts to the namespace's durable counters: sends, ends without a run, lost runs.
-- KEYS[1] = the metrics hash; ARGV = name, delta, name, delta, ...
--
-- Race closed: the same as HINCRBY's (two processes adding to one counter at once both
-- count: nothing runs inside a script), for a chunk of counters a command: a sweep sent
-- to 10,000 repos counts its sends in a few commands, not one HINCRBY per repo.
local hash = KEYS[1]
local names, delta = {}, {}
for i = 1, #ARGV, 2 do
  local k = ARGV[i]
  if delta[k] == nil then
    delta[k] = 0
    names[#names + 1] = k
  end
  delta[k] = delta[k] + tonumber(ARGV[i + 1])
end
hincr_all(hash, names, delta)
return #names
