-- Append one event to each stream given, each capped by its own maxlen, and
-- publish it with its id (a message of one event: a JSON array of one object,
-- the form of the transition scripts' messages; see emit in _common.lua). EventLog.emit picks the streams: a todo event goes to
-- its sweep's stream only; another event of a sweep to the global stream and
-- the sweep's; an event of no sweep to the global stream only.
-- KEYS[i] = a stream (the sweep's, when given, is the last)
-- ARGV[1] = event JSON object without "id", ARGV[1 + i] = maxlen of KEYS[i],
-- ARGV[#KEYS + 2] = pub/sub channel
-- Returns the id in the last stream: the sweep stream's when there is a sweep.
--
-- Race closed: the appends and the publish happen at once, so a reader of
-- either stream never sees a sweep event the other lacks (the merged reader
-- finds a sweep through the global copy and skips the sweep copy), and the
-- live message already carries the id a follower resumes from.
local id
for i = 1, #KEYS do
  id = redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[i + 1], '*', 'e', ARGV[1])
end
-- Splice the id in front of the object's other members (the JSON text is
-- produced by Python and always a non-empty object).
local msg = '[{"id":' .. jstr(id) .. ',' .. string.sub(ARGV[1], 2) .. ']'
redis.call('PUBLISH', ARGV[#KEYS + 2], msg)
return id
