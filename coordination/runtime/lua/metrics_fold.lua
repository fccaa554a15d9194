-- Fold an ended run's own metric counts (the sweep hash's `m:<repo>` fields, which
-- todo_finish.lua adds each outcome and run time to, for the repos `mrepos` lists; and
-- `metrics`, the one field a run of before 0.4 kept them in) into the namespace's
-- durable counters, and drop them; count the fold.
-- KEYS[1] = the sweep hash, KEYS[2] = the metrics hash.
-- Returns 1 if there was anything to fold, else 0.
--
-- Race closed: a scrape adds the counters and every sweep's own counts. Folded in two
-- steps, a scrape between them would see a run's counts twice or not at all, and a
-- counter that goes down reads as a reset. Here the move is one step, and `folds` (in
-- the same hash, moved in the same step) tells a scrape whose reads straddled a fold
-- to read again (runtime/metrics.py, MetricsReader.live_sweeps).
--
-- The counts of 10,000 repos are read, added and written a chunk of fields at a time
-- (HMGET, HSET), not one HINCRBY per counter: in one script nothing runs in between, so
-- the sums are the HINCRBYs', for a few commands a run instead of two per repo.
local sweep, hash = KEYS[1], KEYS[2]
local total, order = {}, {}

local function add(counts)
  if type(counts) ~= 'table' then return end
  for k, v in pairs(counts) do
    local n = tonumber(v)
    if n then
      if total[k] == nil then
        total[k] = 0
        order[#order + 1] = k
      end
      total[k] = total[k] + n
    end
  end
end

local repos = jdecode(redis.call('HGET', sweep, 'mrepos'))
local fields = {}
if type(repos) == 'table' then
  for _, r in ipairs(repos) do fields[#fields + 1] = 'm:' .. r end
end
local got = hmget(sweep, fields)
local any = false
for _, f in ipairs(fields) do
  if got[f] then
    any = true
    add(jdecode(got[f]))
  end
end
local legacy = redis.call('HGET', sweep, 'metrics')
if legacy then
  any = true
  add(jdecode(legacy))
end
redis.call('HDEL', sweep, 'mrepos', 'metrics')
for i = 1, #fields, CHUNK do
  redis.call('HDEL', sweep, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
end
if not any then return 0 end
hincr_all(hash, order, total)
redis.call('HINCRBY', hash, 'folds', 1)
return 1
