-- Carry one sweep that coord 0.2 kept beside the catalog (a row of the archive
-- table) into this server, unless the server holds it already
-- (runtime/migrations/v02_embedded_file.py). Embedded servers only: KEYS are in several slots.
-- KEYS[1] = the sweep's hash, KEYS[2] = its event stream, KEYS[3] = the sweeps' index
-- ARGV[1] = the sweep id (its member in the index), ARGV[2] = its score there
-- ARGV[3] = seconds to keep it (0: no expiry)
-- ARGV[4] = JSON {"fields": {field: value, ...}, "events": [[id, {field: value}], ...]}
--           (the hash as it is to be written; the stream's entries, oldest first)
-- Returns 1 when the sweep was written, 0 when its hash was there.
--
-- Race closed: two processes carrying the same file over at once (both joined
-- the server before either marked it carried). Looking and writing are one
-- step, so only the first writes the sweep and the other leaves it alone; nor
-- is a sweep resumed since it was carried ever overwritten by a later attempt.
-- A stream found without its hash is what a restore cut off halfway left (coord
-- before 0.3 wrote the stream first): it goes, so its ids can be added again.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local data = cjson.decode(ARGV[4])
redis.call('DEL', KEYS[2])
for _, entry in ipairs(data.events) do
  local args = {KEYS[2], entry[1]}
  for field, value in pairs(entry[2]) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  redis.call('XADD', unpack(args))
end
for field, value in pairs(data.fields) do
  put(field, value)
end
flush(KEYS[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 1
