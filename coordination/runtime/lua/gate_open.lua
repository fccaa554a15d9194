-- Open gates: todos whose predecessors succeeded now wait for people.
-- KEYS[1] = sweep event stream, KEYS[2] = sweep hash.
-- ARGV[1..2] = event ledger, ARGV[3] = sweep id, ARGV[4] = now (JSON), ARGV[5] =
-- JSON list of the statuses a gate may open from, then per gate: its todo id, its
-- binding (digest of the spec and its predecessors' outcomes), when it expires (0:
-- never), how many approvals it needs, and its gate.waiting event's fields (JSON).
-- Returns a JSON list of [todo, votes to approve already given under the same
-- binding] for each gate it opened (a resumed sweep's gate keeps the approvals its
-- unchanged inputs had, once verified: the caller settles them with gate_decide).
--
-- Races closed: two senders (a finishing predecessor, a supervision pass, an
-- unpause) opening one gate, each saying gate.waiting (only the first sees it in a
-- 'from' status), and a gate opened on a sweep that was paused or ended meanwhile
-- (the sweep's status is read in the same step). The checkpoint and its event are
-- written together.
local sweep, now_n = KEYS[2], tonumber(ARGV[4])
local from = {}
for _, s in ipairs(cjson.decode(ARGV[5])) do from[s] = true end
local gates = {}
for j = 6, #ARGV, 5 do
  gates[#gates + 1] = {id = ARGV[j], binding = ARGV[j + 1], expires = tonumber(ARGV[j + 2]),
                       needed = tonumber(ARGV[j + 3]), ev = ARGV[j + 4]}
end
local names, ids = {'status'}, {}
for _, g in ipairs(gates) do
  names[#names + 1] = 't:' .. g.id
  names[#names + 1] = 'g:' .. g.id
  ids[#ids + 1] = g.id
end
local got = hmget(sweep, tally_names(names, ids))
load_tally(got)
if not SWEEP_ACTIVE[jdecode(got.status)] then return '[]' end
local opened, events = {}, {}
for _, g in ipairs(gates) do
  local cp = cp_decode(got['t:' .. g.id])
  if from[cp_status(cp)] then
    local votes = cp_decode(got['g:' .. g.id])
    local given = 0
    for _, v in pairs(votes) do
      if type(v) == 'table' and v.d == 'approve' and v.b == g.binding then
        given = given + 1
      end
    end
    cp.status, cp.binding, cp.waiting_since = TS.awaiting_approval, g.binding, now_n
    cp.needed, cp.queued_at = g.needed, nil
    if g.expires > 0 then cp.expires_at = g.expires else cp.expires_at = nil end
    -- (who approved is the caller's to say once it verified the votes: gate_decide)
    cp.approvals, cp.rejected_by, cp.refused, cp.settled = nil, nil, nil, nil
    cp.decision, cp.outcome_seal = nil, nil
    put_cp(g.id, cp)
    local ev = cjson.decode(g.ev)
    ev.kind, ev.ts, ev.sweep_id, ev.todo_id = EV.gate_waiting, now_n, ARGV[3], g.id
    ev.needed, ev.approvals = g.needed, given
    if g.expires > 0 then ev.expires_at = g.expires end
    events[#events + 1] = ev
    opened[#opened + 1] = {g.id, given}
  end
end
flush(sweep)
for _, ev in ipairs(events) do emit(ev) end
if #opened == 0 then return '[]' end
return cjson.encode(opened)
