-- Append one event to the global stream and, optionally, to its sweep's
-- stream, and publish it with its id.
-- KEYS[1] = global stream, KEYS[2] = sweep stream (optional)
-- ARGV[1] = event JSON object without "id", ARGV[2] = global maxlen,
-- ARGV[3] = sweep maxlen, ARGV[4] = pub/sub channel
-- Returns the sweep stream id when there is a sweep stream, else the global id.
--
-- Race closed: both appends and the publish happen at once, so a reader of
-- either stream never sees an event the other lacks, and the live message
-- already carries the id a follower resumes from.
local gid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
local id = gid
if #KEYS >= 2 then
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1])
end
-- Splice the id in front of the object's other members (the JSON text is
-- produced by Python and always a non-empty object).
local msg = '{"id":' .. jstr(id) .. ',' .. string.sub(ARGV[1], 2)
redis.call('PUBLISH', ARGV[4], msg)
return id
