-- Helpers shared by every coord script (prepended by client.load_script).
-- Hash fields hold JSON text per field, so the scripts decode before comparing.

local function jdecode(raw)
  if raw == false or raw == nil then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok then return raw end
  if v == cjson.null then return nil end
  return v
end

local function jget(key, field)
  return jdecode(redis.call('HGET', key, field))
end

local function jstr(s)
  return cjson.encode(s)
end

local function in_list(value, json_list)
  if value == nil then return false end
  for _, v in ipairs(cjson.decode(json_list)) do
    if v == value then return true end
  end
  return false
end

-- HSET key f1 v1 f2 v2 ... from ARGV[first..]; values are JSON text already.
local function hset_from(key, first)
  if #ARGV >= first + 1 then
    redis.call('HSET', key, unpack(ARGV, first))
  end
end

local TERMINAL = {succeeded = true, failed = true, skipped = true, cancelled = true}

-- The reason a poison todo ends failed with (checkpoint_claim, todo_lost).
local function poison_reason(lost, worker)
  local r = string.format('its worker died %d times while running it', lost)
  if worker then r = r .. ' (last: ' .. tostring(worker) .. ')' end
  return r
end
