-- A lease holder's write to the checkpoint of the todo it runs.
-- KEYS[1] = sweep hash, KEYS[2] = the writer's lease key
-- ARGV[1] = token, ARGV[2] = fence, ARGV[3] = todo id, ARGV[4] = fields (JSON
-- object; null removes a field)
-- Returns 'ok', or why it was rejected: 'missing' | 'fence' | 'lease' | 'token'.
--
-- Race closed: a holder paused (GC, SIGSTOP, a slow disk) past its TTL wakes up
-- believing it still holds the lease; by then another worker took the todo over
-- with a higher fence and its own token. Each of the three checks below alone
-- rejects that late write, and they are made at the instant of the write.
local raw = redis.call('HGET', KEYS[1], 't:' .. ARGV[3])
if not raw then return 'missing' end
local cp = cp_decode(raw)
if tonumber(ARGV[2]) < (tonumber(cp.fence) or 0) then return 'fence' end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lease' end
if cp.token ~= ARGV[1] then return 'token' end
for field, value in pairs(cjson.decode(ARGV[4])) do
  if value == cjson.null then cp[field] = nil else cp[field] = value end
end
put_cp(ARGV[3], cp)
flush(KEYS[1])
return 'ok'
