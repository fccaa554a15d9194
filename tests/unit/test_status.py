"""The one status module: complete tables, Lua generated from it, unknown is an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fakeredis
import pytest
import redis

from coordination import status as st
from coordination.keys import Keys
from coordination.runtime.scripts import LUA_DIR, script_text
from coordination.runtime.transitions import Transitions

pytestmark = pytest.mark.timeout(30)


def test_every_status_has_a_transition_row_naming_only_known_statuses() -> None:
    assert set(st.TODO_TRANSITIONS) == set(st.TodoStatus)
    assert set(st.SWEEP_TRANSITIONS) == set(st.SweepStatus)
    for table, enum in ((st.TODO_TRANSITIONS, st.TodoStatus), (st.SWEEP_TRANSITIONS, st.SweepStatus)):
        for old, new in table.items():
            assert new <= set(enum), (old, new)


def test_sets_are_consistent_with_the_table() -> None:
    # A terminal todo only leaves its status when a resume resets it to pending (and
    # a gate read passed on a decision that fails its check, which ends failed).
    for s in st.TERMINAL - {st.TodoStatus.succeeded}:
        assert st.TODO_TRANSITIONS[s] <= {st.TodoStatus.pending}, s
    assert st.TODO_TRANSITIONS[st.TodoStatus.succeeded] == {st.TodoStatus.pending,
                                                            st.TodoStatus.failed}
    assert st.SUCCESSFUL <= st.TERMINAL
    assert st.UNSUCCESSFUL == st.TERMINAL - st.SUCCESSFUL
    assert st.NOT_STARTED.isdisjoint(st.TERMINAL)
    assert st.SWEEP_ENDED.isdisjoint(st.SWEEP_LIVE)
    assert st.SWEEP_ENDED | st.SWEEP_LIVE == set(st.SweepStatus)
    # Every todo status but the terminal ones can end (or run) from where it is.
    for s in set(st.TodoStatus) - st.TERMINAL:
        assert st.TODO_TRANSITIONS[s] & (st.TERMINAL | {st.TodoStatus.running}), s


def test_values_are_the_strings_users_see() -> None:
    assert [s.value for s in st.TodoStatus] == [
        "pending", "queued", "held", "awaiting_approval", "running", "succeeded", "failed",
        "skipped", "cancelled", "compensated", "compensation_failed", "cached",
    ]  # DESIGN.md's, 0.2 and 0.3 additions included
    assert {s.value for s in st.SweepStatus} == {
        "queued", "running", "paused", "succeeded", "failed", "cancelled", "rolling_back",
        "rolled_back", "rollback_failed"}
    assert json.dumps({"status": st.TodoStatus.failed}) == '{"status": "failed"}'
    assert st.todo_event(st.TodoStatus.skipped) is st.EventKind.todo_skipped
    assert st.todo_event(st.TodoStatus.cached) is st.EventKind.todo_cached


def test_cached_is_a_success_the_scripts_let_dependents_start_after() -> None:
    """``cached`` (an earlier success reused) is terminal and successful, in Python and in
    the Lua preamble the transition scripts check predecessors against."""
    assert st.TodoStatus.cached in st.TERMINAL and st.TodoStatus.cached in st.SUCCESSFUL
    assert st.TodoStatus.cached not in st.UNSUCCESSFUL
    assert st.TodoStatus.cached in st.TODO_TRANSITIONS[st.TodoStatus.running]
    pre = st.lua_preamble()
    for table in ("TERMINAL", "SUCCESSFUL"):
        line = next(x for x in pre.splitlines() if x.startswith(f"local {table} = "))
        assert '["cached"] = true' in line, line


def test_unknown_status_is_an_error_in_python() -> None:
    with pytest.raises(st.UnknownStatus, match="unknown todo status 'parked'"):
        st.todo_status("parked")
    with pytest.raises(st.UnknownStatus, match="unknown sweep status"):
        st.sweep_status("rolling")


_STATUS_WORDS = sorted({s.value for s in st.TodoStatus} | {s.value for s in st.SweepStatus})


def test_no_lua_script_spells_a_status() -> None:
    """Statuses reach Lua only through the generated preamble (TS.x, SS.x, TERMINAL...)."""
    quoted = re.compile(r"""(['"])(%s)\1""" % "|".join(_STATUS_WORDS))
    found = []
    for path in sorted(LUA_DIR.glob("*.lua")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("--", 1)[0]
            if quoted.search(code):
                found.append(f"{path.name}:{n}: {line.strip()}")
    assert not found, "status spelled in Lua (use TS./SS. from the preamble):\n" + "\n".join(found)


def test_lua_tables_equal_the_python_ones() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    body = st.lua_preamble() + """
local function keys(t) local out = {} for k in pairs(t) do out[#out + 1] = k end
  table.sort(out) return out end
local next_of = {}
for old, new in pairs(TODO_NEXT) do next_of[old] = keys(new) end
return cjson.encode({terminal = keys(TERMINAL), unsuccessful = keys(UNSUCCESSFUL),
  not_started = keys(NOT_STARTED), attention = keys(ATTENTION), active = keys(SWEEP_ACTIVE),
  live = keys(SWEEP_LIVE),
  next = next_of})
"""
    got = json.loads(str(r.eval(body.replace("unsuccessful = keys(UNSUCCESSFUL),",
                                             "unsuccessful = keys(UNSUCCESSFUL), "
                                             "successful = keys(SUCCESSFUL),"), 0)))
    assert got["terminal"] == sorted(st.TERMINAL)
    assert got["successful"] == sorted(st.SUCCESSFUL)
    assert got["unsuccessful"] == sorted(st.UNSUCCESSFUL)
    assert got["not_started"] == sorted(st.NOT_STARTED)
    assert got["attention"] == sorted(st.ATTENTION)
    assert got["active"] == sorted(st.SWEEP_ACTIVE)
    assert got["live"] == sorted(st.SWEEP_LIVE)
    # cjson encodes an empty table as {}: a status with no way out
    assert {k: (v or []) for k, v in got["next"].items()} == {
        str(k): sorted(v) for k, v in st.TODO_TRANSITIONS.items()}


def test_every_script_gets_what_it_uses_of_the_prelude() -> None:
    """Each script is sent with the status tables and helpers it uses (only those):
    every name it uses from them is defined in what is sent, and a script that uses
    none is sent bare."""
    from coordination.runtime.scripts import PRELUDE_MARK, SELF_CONTAINED, _chunks

    defined = {name for name, _ in _chunks(st.lua_preamble())}
    defined |= {name for name, _ in _chunks((LUA_DIR / "_common.lua").read_text())}
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name.startswith("_"):
            continue
        code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
        uses = defined & set(re.findall(r"[A-Za-z_]\w*", code))
        text = script_text(path.stem)
        if path.stem in SELF_CONTAINED:
            assert not uses, f"{path.name} uses {sorted(uses)}: drop it from SELF_CONTAINED"
            assert text == path.read_text()
            continue
        assert text.startswith(PRELUDE_MARK), path.name
        for name in uses:
            assert re.search(rf"^local (function )?{name}\b", text, re.M), (path.name, name)
    # and the prelude is trimmed: the lease-free queue script carries none of the
    # takeover and breaker helpers of todo_start and todo_finish
    for name in ("poison_reason", "breaker_failed", "breaker_succeeded"):
        assert f"local function {name}" in (LUA_DIR / "_common.lua").read_text(), name
        assert f"local function {name}" not in script_text("todo_queue"), name
    assert "local function poison_reason" in script_text("todo_start")


def test_unknown_status_in_redis_is_an_error_not_terminal() -> None:
    """Before: the claim script read any unknown status as 'terminal' (so a todo a
    newer coord marked 'parked' would silently count as done)."""
    r = fakeredis.FakeRedis(decode_responses=True)
    keys = Keys("t")
    r.hset(keys.sweep("S"), mapping={"status": '"running"', "t:A": '{"status":"parked"}'})
    tr = Transitions(r, keys, lease_ttl=5)
    with pytest.raises(redis.ResponseError, match="unknown todo status parked"):
        tr.start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert r.hget(keys.sweep("S"), "t:A") == '{"status":"parked"}'  # nothing changed
    assert r.keys(keys.lease("api", 0)) == []  # and no lease is held


def test_lua_preamble_is_valid_lua_even_with_odd_names() -> None:
    assert st._lua_str('a"b\\c') == '"a\\"b\\\\c"'
    r = fakeredis.FakeRedis(decode_responses=True)
    assert r.eval(st.lua_preamble() + "return TS.pending", 0) == "pending"


def test_lua_files_are_listed_in_the_runtime_package() -> None:
    names = {p.stem for p in Path(LUA_DIR).glob("*.lua")}
    assert {"todo_start", "todo_finish", "todo_end", "todo_queue"} <= names
