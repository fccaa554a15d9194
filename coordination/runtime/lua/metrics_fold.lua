-- Fold an ended run's own metric counts (the sweep hash's `metrics`, which
-- todo_finish.lua adds each outcome and run time to) into the namespace's durable
-- counters, and drop them; count the fold.
-- KEYS[1] = the sweep hash, KEYS[2] = the metrics hash.
-- Returns 1 if there was anything to fold, else 0.
--
-- Race closed: a scrape adds the counters and every sweep's own counts. Folded in two
-- steps, a scrape between them would see a run's counts twice or not at all, and a
-- counter that goes down reads as a reset. Here the move is one step, and `folds` (in
-- the same hash, moved in the same step) tells a scrape whose reads straddled a fold
-- to read again (runtime/metrics.py, MetricsReader.live_sweeps).
local raw = redis.call('HGET', KEYS[1], 'metrics')
if not raw then return 0 end
local ok, m = pcall(cjson.decode, raw)
if ok and type(m) == 'table' then
  for k, v in pairs(m) do
    local n = tonumber(v)
    if n then redis.call('HINCRBY', KEYS[2], k, string.format('%d', n)) end
  end
end
redis.call('HDEL', KEYS[1], 'metrics')
redis.call('HINCRBY', KEYS[2], 'folds', 1)
return 1
