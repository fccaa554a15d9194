-- One person's vote on a gate (or, with no person, a settling of the votes it has),
-- and what follows when it passes or is rejected, in one step.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash.
-- ARGV[1..2] = event ledger, ARGV[3] = sweep id, ARGV[4] = todo id, ARGV[5] = now
-- (JSON), ARGV[6] = level (-1: none), ARGV[7] = who ('' : only settle), ARGV[8] =
-- 'approve' | 'reject', ARGV[9] = comment, ARGV[10] = the vote (JSON, sealed by the
-- caller; '' when settling), ARGV[11] = the binding the caller checked the votes
-- under, ARGV[12] = the votes field as the caller read it ('' : none), ARGV[13] =
-- JSON list of the approvers whose votes the caller verified (who included when
-- approving), ARGV[14] = JSON list of the votes it refused and why, ARGV[15] = a
-- digest of the votes read (kept when settling: a settling pass skips a gate whose
-- votes it counted as they are), ARGV[16] = the decision's seal (JSON, made by the
-- caller, which verified the votes, for the count it hands over: kept as the gate's
-- ``decision`` when it passes; '' : none), then a successor id and its queue per
-- eager successor to look at (when it passes).
-- Returns {verdict, detail, terminal count, level done (0|1), queued successors (JSON)}:
--   {'gone', sweep status}           the sweep is missing or has ended
--   {'status', todo status}          the gate is not waiting (decided, expired, not open)
--   {'changed', ''}                  the votes or the binding changed since the caller
--                                    read them: read, verify and call again
--   {'counted', n}                   vote recorded: n verified approvals so far
--   {'approved', n, terminal, level done, queued}  the last approval needed: succeeded
--   {'rejected', '', terminal, level done, '[]'}   rejected: failed
--
-- Lua cannot check a vote's signature (HMAC seal, SSH signature), so the caller
-- verifies every vote in Python and this script counts only what it was told was
-- verified, under a compare-and-set: the votes field must be byte for byte what the
-- caller verified, and the gate's binding the one it verified them under.
-- Races closed: two approvers deciding at once both counting to N - 1 (neither
-- passing the gate: the second one's compare-and-set fails, it reads the first's
-- vote and counts it) or both to N (passing it twice, sending what follows twice:
-- the status is read in the same step); an approval landing on a gate that a
-- rejection, its expiry, a re-opening under another binding or its sweep's end
-- closed meanwhile; one person's two approvals counting twice (the caller refuses an
-- approval whose person's counted vote it read; the second of two at once finds the
-- first's by the compare-and-set). The vote, the count,
-- the status, the counters, the events and the eager successors move together (the
-- successors as in todo_finish.lua: each counts down once).
local sweep, sweep_id, todo_id = KEYS[2], ARGV[3], ARGV[4]
local now_n, level = tonumber(ARGV[5]), tonumber(ARGV[6])
local who, decision, comment, vote = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local seen_binding, seen_votes = ARGV[11], ARGV[12]
local users, refused, settled = cjson.decode(ARGV[13]), cjson.decode(ARGV[14]), ARGV[15]
local sealed = ARGV[16]
local succ = {}
for i = 17, #ARGV, 2 do succ[#succ + 1] = {ARGV[i], ARGV[i + 1]} end

local got, counters = read_end(sweep, todo_id, level,
  {'status', 't:' .. todo_id, 'g:' .. todo_id}, succ)
local sst = jdecode(got.status)
if not SWEEP_LIVE[sst] then return {'gone', tostring(sst)} end
local cp = cp_decode(got['t:' .. todo_id])
local st = cp_status(cp)
if st ~= TS.awaiting_approval then return {'status', st} end
local binding = cp.binding or ''
if binding ~= seen_binding or (got['g:' .. todo_id] or '') ~= seen_votes then
  return {'changed', ''}
end
local votes = cp_decode(got['g:' .. todo_id])

if who ~= '' then
  votes[who] = cjson.decode(vote)
  put('g:' .. todo_id, cjson.encode(votes))
  cp.settled = nil
else
  -- what was counted (a settling pass skips a gate whose votes did not change since)
  cp.settled = settled
end
table.sort(users)
local needed = tonumber(cp.needed) or 1
if #users > 0 then cp.approvals = users else cp.approvals = nil end
if #refused > 0 then cp.refused = refused else cp.refused = nil end

local ev
if decision == 'reject' and who ~= '' then
  ev = event(EV.gate_rejected, sweep_id, todo_id, now_n)
  ev.by, ev.comment = who, comment
  cp.rejected_by = who
elseif who ~= '' then
  ev = event(EV.gate_approved, sweep_id, todo_id, now_n)
  ev.by, ev.comment, ev.approvals, ev.needed = who, comment, #users, needed
  ev.passed = #users >= needed
end

local passed = decision ~= 'reject' and #users >= needed
if not passed and not (decision == 'reject' and who ~= '') then
  put_cp(todo_id, cp)
  flush(sweep)
  if ev then emit(ev) end
  return {'counted', #users}
end

load_counters(got, counters)
local new, reason
if passed then
  new, reason = TS.succeeded, 'approved by ' .. table.concat(users, ', ')
else
  new = TS.failed
  reason = 'rejected by ' .. who
  if comment ~= '' then reason = reason .. ': ' .. comment end
end
cp.status, cp.reason, cp.finished_at = new, reason, now_n
-- What lets the gate's successors run (they check it): the caller's seal of this
-- very count, or none (a reader with a key then refuses the decision).
if passed and sealed ~= '' then cp.decision = cjson.decode(sealed) else cp.decision = nil end
put_cp(todo_id, cp)
local n, level_done = ended(new, level)

local ready, queued_events = {}, {}
if passed and #succ > 0 then
  count_down_successors(succ, got, SWEEP_ACTIVE[sst], sweep_id, todo_id, now_n,
    queued_events, ready)
end
flush(sweep)
if ev then emit(ev) end
local done = event('todo.' .. new, sweep_id, todo_id, now_n)
done.reason = reason
emit(done)
for _, q in ipairs(queued_events) do emit(q) end
local queued = '[]'
if #ready > 0 then queued = cjson.encode(ready) end
if passed then return {'approved', #users, n, level_done, queued} end
return {'rejected', '', n, level_done, '[]'}
