-- Put deliveries in the notifications outbox, each once, each in its webhook's lane.
-- KEYS[1] = deliveries hash, KEYS[2] = due set, KEYS[3] = log set, KEYS[4] = the
-- outbox lease, KEYS[5] = the lanes set (lane -> when its first delivery is due),
-- KEYS[6..] = the lanes' own sets (delivery id -> event order); ARGV[1] = the filler's
-- lease token, ARGV[2] = how many deliveries the log keeps, ARGV[3] = now, then per
-- delivery: id, record JSON, due time, lane, the index in KEYS of its lane's set,
-- its event order.
-- Returns how many were new, or -1 when the caller no longer holds the lease.
--
-- Races closed: two fillers (a worker paused past its lease and the one that took
-- the outbox over, or one that re-reads events after a crash between filling and
-- saving its cursor) putting the same event in twice: the record is written with
-- HSETNX on an id derived from the webhook and the event's stream entry, and only a
-- new record is made due, so each (webhook, event) is delivered under one id. And a
-- new delivery overtaking an earlier one of its webhook that is waiting out a
-- backoff: it joins its lane (in event order) in the same write, and a lane already
-- listed keeps its due time (ZADD NX), so it goes after the ones before it. A lane's
-- order is the events' (milliseconds * 1000 + rank within one fill): an event of a
-- millisecond a lane already holds goes after what the lane holds of it (two fills
-- can each read part of one millisecond).
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
local new = 0
for i = 4, #ARGV, 6 do
  local id, rec, due = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local lane, lane_key, order = ARGV[i + 3], KEYS[tonumber(ARGV[i + 4])], ARGV[i + 5]
  if redis.call('HSETNX', KEYS[1], id, rec) == 1 then
    redis.call('ZADD', KEYS[2], due, id)
    redis.call('ZADD', KEYS[3], ARGV[3], id)
    local last = redis.call('ZRANGE', lane_key, -1, -1, 'WITHSCORES')[2]
    if last then
      local o, l = tonumber(order), tonumber(last)
      if math.floor(o / 1000) == math.floor(l / 1000) and o <= l then
        order = string.format('%.0f', l + 1)
      end
    end
    redis.call('ZADD', lane_key, order, id)
    redis.call('ZADD', KEYS[5], 'NX', due, lane)
    new = new + 1
  end
end
-- The log keeps the newest ones; a delivery still due is never dropped.
local keep = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[3])
if n > keep then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, n - keep - 1)) do
    local raw = redis.call('HGET', KEYS[1], id)
    local ok, rec = pcall(cjson.decode, raw or 'null')
    -- (a delivery still to be made has a number in next_at; a done one has null)
    if not (ok and type(rec) == 'table' and type(rec.next_at) == 'number') then
      redis.call('ZREM', KEYS[3], id)
      redis.call('HDEL', KEYS[1], id)
    end
  end
end
return new
