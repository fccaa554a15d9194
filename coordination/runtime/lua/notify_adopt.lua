-- Put deliveries the outbox holds but no lane lists (written by a coord before lanes)
-- in their webhooks' lanes.
-- KEYS[1] = deliveries hash, KEYS[2] = due set, KEYS[3] = the outbox lease, KEYS[4] =
-- the lanes set, KEYS[5..] = the lanes' own sets; ARGV[1] = the holder's lease token,
-- then per delivery: id, lane, the index in KEYS of its lane's set, its event order.
-- Returns how many were put in a lane, or -1 when the caller no longer holds the lease.
--
-- Race closed: adopting a delivery another holder settled meanwhile (it would sit in
-- a lane with no record, or be sent again): only an id still in the due set with its
-- record is adopted, checked in the same script as the lease; its lane is due when
-- it is (ZADD NX: a lane already listed keeps its time).
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
local n = 0
for i = 2, #ARGV, 4 do
  local id, lane, lane_key, order = ARGV[i], ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])], ARGV[i + 3]
  local due = redis.call('ZSCORE', KEYS[2], id)
  if due and redis.call('HEXISTS', KEYS[1], id) == 1 then
    if redis.call('ZADD', lane_key, 'NX', order, id) == 1 then
      n = n + 1
    end
    redis.call('ZADD', KEYS[4], 'NX', due, lane)
  end
end
return n
