-- Helpers shared by every coord script (prepended by scripts.script_text, after
-- the status tables generated from coordination/status.py: TS, SS, EV, TERMINAL...).
--
-- A sweep is one hash (its key is KEYS[2] in the transition scripts):
--   record fields   JSON text each (status, run, deadline, spec, ...)
--   counters        integers: terminal, level_left:<k>, level_ok:<k>
--   t:<todo>        the todo's checkpoint: one JSON object (absent: pending,
--                   nothing has happened to it yet)
--   o:<todo>        the output tail of its last run (plain text)
--   r:<todo>        eager strategy: its predecessors not yet succeeded
--   m:<repo>        this run's own metric counts of the repo (JSON), until
--                   metrics_fold.lua (mrepos: the repos whose m: it folds)
--   n:<status>, a:<k>  its tally (see tally_move below)
--   w:<todo>        '1': someone waits for a slot its run holds (todo_start.lua)
-- so a transition reads what it decides on in one HMGET and writes what it
-- changed in one HSET, whatever the sweep's size.

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

-- Events held as JSON texts, one a line (JSON text holds no raw newline), each appended
-- to KEYS[k0..#KEYS] (each capped by its maxlen), in order, and all published with their
-- ids in one message (as event_emit.lua's). ARGV[a] = the channel, ARGV[a + 1 ..] = the
-- maxlen of each of those keys. Returns the last one's id in the last stream.
local function emit_texts(k0, texts, a)
  local id
  local told = {}
  for text in string.gmatch(texts, '[^\n]+') do
    for i = k0, #KEYS do
      id = redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[a + 1 + i - k0], '*', 'e', text)
    end
    -- the id spliced in front of the object's other members (Python's non-empty object)
    told[#told + 1] = '{"id":' .. jstr(id) .. ',' .. string.sub(text, 2)
  end
  redis.call('PUBLISH', ARGV[a], '[' .. table.concat(told, ',') .. ']')
  return id
end

-- Events made ready by EventLog.prepare, written by the script that makes the change
-- they tell of (emit_texts): ARGV[a] = their JSON texts, one a line ('' : no event,
-- nothing written), ARGV[a + 1] = the channel, ARGV[a + 2 ..] = the maxlen of each of
-- KEYS[k0..#KEYS]. Returns the last one's id in the last stream (nil: none).
local function emit_prepared(k0, a)
  if ARGV[a] == '' then return nil end
  return emit_texts(k0, ARGV[a], a + 1)
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

-- Lua's unpack() fails past a few thousand values: big sweeps read and write
-- their hash in chunks of this many arguments (a level of 10,000 todos: 3 calls).
local CHUNK = 4000

-- The values of ``names`` in hash ``key``, in one HMGET (more for huge lists),
-- as a table name -> raw value (false where missing).
local function hmget(key, names)
  local out = {}
  for i = 1, #names, CHUNK do
    local part = {unpack(names, i, math.min(i + CHUNK - 1, #names))}
    local values = redis.call('HMGET', key, unpack(part))
    for j = 1, #part do out[part[j]] = values[j] end
  end
  return out
end

-- Add delta[name] to each integer field of ``names`` in hash ``key`` (read by hmget,
-- written a chunk of fields at a time): HINCRBY's sums, in a few commands.
local function hincr_all(key, names, delta)
  local have = hmget(key, names)
  local writes = {}
  for _, k in ipairs(names) do
    writes[#writes + 1] = k
    writes[#writes + 1] = string.format('%d', (tonumber(have[k]) or 0) + delta[k])
  end
  for i = 1, #writes, CHUNK do
    redis.call('HSET', key, unpack(writes, i, math.min(i + CHUNK - 1, #writes)))
  end
end

-- The status each checkpoint decoded by this call had when it was read (the table
-- is the key): put_cp moves the sweep's tally from it.
local READ_AS = {}

-- A checkpoint from its t:<todo> field ({} when absent). Never guessed: a field
-- that is not a JSON object is an error, as an unknown status is.
local function cp_decode(raw)
  if not raw then
    local none = {}
    READ_AS[none] = TS.pending
    return none
  end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' then
    error('unreadable checkpoint ' .. tostring(raw))
  end
  READ_AS[v] = v.status or TS.pending
  return v
end

local function cp_status(cp)
  return todo_known(cp.status or TS.pending)
end

-- The sweep hash's writes of one script call, made by one HSET at its end.
local WRITES = {}
local function put(field, value)
  WRITES[#WRITES + 1] = field
  WRITES[#WRITES + 1] = value
end

-- Counters, as read by the script's HMGET (COUNTERS[name] = number) and
-- changed by ended(): written back by flush() with everything else.
local COUNTERS, CHANGED = {}, {}

local function load_counters(values, names)
  for _, name in ipairs(names) do
    COUNTERS[name] = tonumber(values[name]) or 0
  end
end

local function bump(name, by)
  if COUNTERS[name] == nil then error('counter ' .. name .. ' moved without being read') end
  COUNTERS[name] = COUNTERS[name] + by
  CHANGED[name] = true
  return COUNTERS[name]
end

-- The sweep's tally: how many of its todos are in each status, and which are in a
-- status a person should look at (ATTENTION), so that `coord sweep status` of a
-- sweep of 10,000 todos reads a few fields and the todos they name, not every
-- checkpoint (sweeps/reading.py, summary):
--   tally        present when the sweep keeps one (sweeps of before it have none)
--   n:<status>   its todos in that status; pending: those with no checkpoint too
--   a:<k>        JSON {todo: status} of its todos in an ATTENTION status whose id
--                hashes to k (tally_bucket): a move rewrites one small field
-- put_cp moves them whenever a checkpoint's status changes, so they change in the
-- same step as the checkpoints they count, in the script's one HSET (no command of
-- their own). A script that may change a status reads them with its one HMGET:
-- tally_names, then load_tally; a status moved without them is an error.
local TALLY_BUCKETS = 256

local function tally_bucket(todo_id)
  local h = 0
  for i = 1, #todo_id do h = (h * 31 + string.byte(todo_id, i)) % 65521 end
  return h % TALLY_BUCKETS
end

-- nil: not read by this call; false: the sweep keeps no tally; true: read.
local TALLY = nil
local TALLY_RAW = {}
local TALLY_BUCKET = {}
local TALLY_CHANGED = {}

-- Append to ``names`` the tally fields of a sweep, for the todos in ``todo_ids``.
local function tally_names(names, todo_ids)
  names[#names + 1] = 'tally'
  for _, s in pairs(TS) do names[#names + 1] = 'n:' .. s end
  local seen = {}
  for _, t in ipairs(todo_ids) do
    local f = 'a:' .. tally_bucket(t)
    if not seen[f] then
      seen[f] = true
      names[#names + 1] = f
    end
  end
  return names
end

-- The tally as the script's HMGET read it (``got``: name -> raw value).
local function load_tally(got)
  TALLY = got.tally ~= nil and got.tally ~= false
  if not TALLY then return end
  local counters = {}
  for _, s in pairs(TS) do counters[#counters + 1] = 'n:' .. s end
  load_counters(got, counters)
  for name, raw in pairs(got) do
    if string.sub(name, 1, 2) == 'a:' then TALLY_RAW[name] = raw end
  end
end

-- A todo's status moved from ``was`` to ``now``: count it, and keep its bucket.
local function tally_move(todo_id, was, now)
  if TALLY == nil then
    error('the status of ' .. todo_id .. ' moved without the tally read (tally_names)')
  end
  if not TALLY then return end
  bump('n:' .. was, -1)
  bump('n:' .. now, 1)
  if ATTENTION[was] or ATTENTION[now] then
    local f = 'a:' .. tally_bucket(todo_id)
    local b = TALLY_BUCKET[f]
    if b == nil then
      local raw = TALLY_RAW[f]
      if raw == nil then error('tally field ' .. f .. ' of ' .. todo_id .. ' not read') end
      b = jdecode(raw)
      if type(b) ~= 'table' then b = {} end
      TALLY_BUCKET[f] = b
    end
    if ATTENTION[now] then b[todo_id] = now else b[todo_id] = nil end
    TALLY_CHANGED[f] = true
  end
end

local function put_cp(todo_id, cp)
  local was, now = READ_AS[cp], cp.status or TS.pending
  if was == nil then error('the checkpoint of ' .. todo_id .. ' is written without being read') end
  if was ~= now then tally_move(todo_id, was, now) end
  READ_AS[cp] = now
  -- (an empty table encodes as [] or {} depending on the cjson: always an object)
  if next(cp) == nil then put('t:' .. todo_id, '{}') else put('t:' .. todo_id, cjson.encode(cp)) end
end

local function flush(key)
  for name in pairs(CHANGED) do put(name, string.format('%d', COUNTERS[name])) end
  CHANGED = {}
  for f in pairs(TALLY_CHANGED) do
    local b = TALLY_BUCKET[f]
    if next(b) == nil then put(f, '{}') else put(f, cjson.encode(b)) end
  end
  TALLY_CHANGED = {}
  for i = 1, #WRITES, CHUNK do
    redis.call('HSET', key, unpack(WRITES, i, math.min(i + CHUNK - 1, #WRITES)))
  end
  WRITES = {}
end

-- The counters a todo's end moves: the sweep's terminal count and, for the
-- levels strategy (level >= 0), its level's todos left and successes.
local function counter_names(levels)
  local names, seen = {'terminal'}, {}
  for _, level in ipairs(levels) do
    if level ~= nil and level >= 0 and not seen[level] then
      seen[level] = true
      names[#names + 1] = 'level_left:' .. level
      names[#names + 1] = 'level_ok:' .. level
    end
  end
  return names
end

-- One read of a todo's end (its finish, a gate's decision): `names` (the sweep's
-- status, the todo's fields), the counters of its level, and each eager successor's
-- count and checkpoint (`succ`: {todo, ...} each), with the tally of the todo and its
-- successors (load_tally). Returns what was read (field -> value) and the counters' names.
local function read_end(sweep, todo_id, level, names, succ)
  local counters = counter_names({level})
  for _, c in ipairs(counters) do names[#names + 1] = c end
  local moved = {todo_id}
  for _, s in ipairs(succ) do
    names[#names + 1] = 'r:' .. s[1]
    names[#names + 1] = 't:' .. s[1]
    moved[#moved + 1] = s[1]
  end
  local got = hmget(sweep, tally_names(names, moved))
  load_tally(got)
  return got, counters
end

-- Bookkeeping of a todo that just reached a terminal status (see counter_names).
-- Returns the terminal count and whether the level just ended (1) or not (0).
local function ended(status, level)
  local n = bump('terminal', 1)
  local level_done = 0
  if level ~= nil and level >= 0 then
    if SUCCESSFUL[status] then bump('level_ok:' .. level, 1) end
    if bump('level_left:' .. level, -1) == 0 then level_done = 1 end
  end
  return n, level_done
end

-- The reason a poison todo ends failed with (todo_start, todo_lost).
local function poison_reason(lost, worker)
  local r = string.format('its worker died %d times while running it', lost)
  if worker then r = r .. ' (last: ' .. tostring(worker) .. ')' end
  return r
end

-- The event ledger, as every transition script receives it: KEYS[1] = the
-- sweep's stream, ARGV[1] = its maxlen, ARGV[2] = the pub/sub channel. Todo
-- events go to their sweep's stream only (the namespace-wide stream holds the
-- sweeps' own events; `coord events` merges the two).
-- emit() appends at once (the id is known when it returns); the live message is
-- sent once per script call, by publish_emitted(), which scripts.script_text runs
-- after the body of every script that uses emit(), whichever way the body returns:
-- one PUBLISH of a JSON array of the call's events in stream order, each object
-- with its id first (a call emitting more than EVENTS_PER_MESSAGE sends one array
-- per that many). A script that fails after emitting leaves its events in the
-- stream, unpublished (the stream is the record; the channel only a live view).
local EMITTED = {}

-- An event of the sweep's stream held as its JSON text (made by EventLog.prepare).
local function emit_text(text)
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', text)
  EMITTED[#EMITTED + 1] = '{"id":' .. jstr(id) .. ',' .. string.sub(text, 2)
  return id
end

local function emit(ev)
  return emit_text(cjson.encode(ev))
end

-- Events one live message carries at most (a level of 10,000 queued todos: 10).
local EVENTS_PER_MESSAGE = 1000

local function publish_emitted()
  for i = 1, #EMITTED, EVENTS_PER_MESSAGE do
    local last = math.min(i + EVENTS_PER_MESSAGE - 1, #EMITTED)
    redis.call('PUBLISH', ARGV[2], '[' .. table.concat(EMITTED, ',', i, last) .. ']')
  end
  EMITTED = {}
end

local function event(kind, sweep_id, todo_id, now)
  return {kind = kind, ts = now, sweep_id = sweep_id, todo_id = todo_id}
end

-- A todo's run found lost (`reason`), said in the step that counts it (todo_lost.lua;
-- a poison's, say_poisoned).
local function say_lost(sweep_id, todo_id, cp, reason, now)
  local lost = event(EV.todo_lost, sweep_id, todo_id, now)
  lost.worker, lost.reason, lost.lost_runs = cp.worker, reason, cp.lost_runs
  emit(lost)
end

-- A todo ended 'failed' as poison (its runs lost too often: COORD_MAX_LOST_RUNS), said
-- in the step that ends it (todo_lost.lua, todo_start.lua's takeover): its lost run
-- (found so: `reason`), then its failure. Said after the step by its caller, a caller
-- that died in between lost both.
local function say_poisoned(sweep_id, todo_id, cp, reason, now)
  say_lost(sweep_id, todo_id, cp, reason, now)
  local failed = event(EV.todo_failed, sweep_id, todo_id, now)
  failed.worker, failed.reason, failed.attempts = cp.worker, cp.reason, cp.attempts
  failed.poison = true
  emit(failed)
end

-- A repo's circuit breaker (hash: state, failures, opened_at, probe, probe_until).
-- n = consecutive failed or lost todos that open it (0: the repo has no breaker).
-- A failure counts one; it opens a closed breaker at n, and re-opens a half-open
-- one at once (its probe failed). Returns the failure count and whether it opened.
local function breaker_failed(key, n, now)
  if n == nil or n <= 0 then return 0, false end
  local fails = redis.call('HINCRBY', key, 'failures', 1)
  local state = redis.call('HGET', key, 'state') or BS.closed
  if state == BS.half_open or (state == BS.closed and fails >= n) then
    redis.call('HSET', key, 'state', BS.open, 'opened_at', now, 'probe', '', 'probe_until', '0')
    return fails, true
  end
  return fails, false
end

-- A failed or lost run counted against its repo's breaker (breaker_failed), said when
-- it opened the breaker (repo.breaker_open, a default webhook event), in that step.
local function breaker_failed_said(key, n, now, sweep_id, todo_id, repo)
  local fails, opened = breaker_failed(key, n, now)
  if opened then
    local b = event(EV.repo_breaker_open, sweep_id, todo_id, now)
    b.repo, b.failures = repo, fails
    emit(b)
  end
end

-- A todo of the repo succeeded: the count starts again and the breaker closes.
-- Returns true when it was open or half-open (it closed now).
local function breaker_succeeded(key, n)
  if n == nil or n <= 0 then return false end
  local state = redis.call('HGET', key, 'state') or BS.closed
  redis.call('HSET', key, 'failures', '0', 'state', BS.closed, 'probe', '', 'probe_until', '0')
  return state ~= BS.closed
end

-- coord metrics: the run-time histogram's upper bounds (seconds), as
-- runtime/metrics.py's BUCKETS (a test compares them); past the last: its length.
local METRIC_BUCKETS = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200}
local function metric_bucket(seconds)
  for i, bound in ipairs(METRIC_BUCKETS) do
    if seconds <= bound then return i - 1 end
  end
  return #METRIC_BUCKETS
end

-- Pacing: token buckets, one per pace key value (`pace:` on a plan or repo), kept
-- as GCRA: each bucket is one string, its theoretical arrival time (TAT), in the
-- server's clock (TIME), so workers on hosts whose clocks disagree share one pace.
-- A bucket of `interval` s per token holding `burst` tokens lets a start through
-- when TAT - burst * interval + interval <= now, and moves TAT one interval on.
-- Race closed: two workers (of one sweep or of two) each reading a bucket with a
-- token left and both starting: the read, the decision and the take are one script
-- step, and the take happens in the same step as the start it pays for (a start
-- refused for any other reason takes nothing). keys: the buckets; ivs / bursts:
-- theirs. Returns nil (taken from every bucket, all or none) and the server time,
-- or the time at which every bucket would have a token, the server time and the
-- buckets without one (their names: the keys after ':pace:').
local function pace_take(keys, ivs, bursts)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local due, tats, empty = 0, {}, {}
  for i, key in ipairs(keys) do
    local tat = tonumber(redis.call('GET', key)) or 0
    if tat < now then tat = now end
    local at = tat + ivs[i] - bursts[i] * ivs[i]
    if at > now then
      if at > due then due = at end
      empty[#empty + 1] = string.match(key, ':pace:(.*)$') or key
    end
    tats[i] = tat + ivs[i]
  end
  if due > 0 then return due, now, empty end
  for i, key in ipairs(keys) do
    -- The bucket is full again once TAT is past: nothing worth keeping after that.
    local ms = math.ceil((tats[i] - now) * 1000) + 1000
    redis.call('SET', key, string.format('%.6f', tats[i]), 'PX', ms)
  end
  return nil, now
end

-- After a todo succeeded, its eager successors (succ: {id, queue} pairs): each
-- counts its predecessors left down once (its 'r:<todo>' field, read in got); one
-- whose count reaches 0 and is still pending is queued, its todo.queued event added
-- to events and its id to ready. While the sweep is not active (paused) they only
-- count down: the supervision pass queues what is ready on unpause.
local function count_down_successors(succ, got, active, sweep_id, todo_id, now_n, events, ready)
  for _, s in ipairs(succ) do
    local sid, queue = s[1], s[2]
    local left = (tonumber(got['r:' .. sid]) or 0) - 1
    put('r:' .. sid, string.format('%d', left))
    local scp = cp_decode(got['t:' .. sid])
    if active and left == 0 and cp_status(scp) == TS.pending then
      scp.status, scp.queued_at = TS.queued, now_n
      put_cp(sid, scp)
      local q = event(EV.todo_queued, sweep_id, sid, now_n)
      q.queue, q.via = queue, 'eager after ' .. todo_id
      events[#events + 1] = q
      ready[#ready + 1] = sid
    end
  end
end
