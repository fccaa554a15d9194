-- Add events that coord 0.2 kept beside the catalog (the sweeps' own events,
-- not their todos') to the global stream, where the merged view finds the
-- sweeps (runtime/migrations/v02_embedded_file.py). Ids the stream holds already are skipped.
-- KEYS[1] = the global event stream
-- ARGV[1] = JSON [[id, {field: value}], ...], ids distinct and in increasing order
-- ARGV[2] = the stream's cap (MAXLEN ~)
-- Returns how many events were added.
--
-- Race closed: an event emitted, or another process carrying the same file
-- over, between a look at the stream and the writes. Looking, merging and
-- writing are one step. A stream that already holds later events (a sweep
-- run on this server before the carry-over) is rewritten in id order: XADD
-- takes only ids above the stream's last.
local function id_of(text)
  local ms, seq = string.match(text, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(a, b)
  local ams, aseq = id_of(a)
  local bms, bseq = id_of(b)
  if ams ~= bms then return ams < bms end
  return aseq < bseq
end
local function flat(fields)
  local out = {}
  for field, value in pairs(fields) do
    out[#out + 1] = field
    out[#out + 1] = value
  end
  return out
end

local new = cjson.decode(ARGV[1])
if #new == 0 then
  return 0
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local added = 0
if #last == 0 or before(last[1][1], new[1][1]) then
  for _, e in ipairs(new) do
    redis.call('XADD', KEYS[1], e[1], unpack(flat(e[2])))
  end
  added = #new
else
  local have = redis.call('XRANGE', KEYS[1], '-', '+')
  local merged, i, j = {}, 1, 1
  while i <= #have or j <= #new do
    if j > #new or (i <= #have and not before(new[j][1], have[i][1])) then
      if j <= #new and new[j][1] == have[i][1] then
        j = j + 1  -- there already
      else
        merged[#merged + 1] = {have[i][1], have[i][2]}
        i = i + 1
      end
    else
      merged[#merged + 1] = {new[j][1], flat(new[j][2])}
      j = j + 1
      added = added + 1
    end
  end
  if added == 0 then
    return 0
  end
  redis.call('DEL', KEYS[1])
  for _, e in ipairs(merged) do
    redis.call('XADD', KEYS[1], e[1], unpack(e[2]))
  end
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
return added
