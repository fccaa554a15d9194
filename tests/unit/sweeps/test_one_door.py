"""One door for a todo's ending, and one place that seals it: checked on the source.

Every way a todo ends (a worker's finish, a skip, a cancel, a refusal, a wait timeout, a
lost run's poison, a gate decided or expired, a deadline) goes through the door in
``coordination/sweeps/progress.py`` (its section "the door"), which runs the script,
builds the :class:`~coordination.sweeps.progress.Change` and carries the sweep on, in that
order; the runtime that runs the script (``coordination/runtime/transitions.py``, the
sealer) seals each ending it writes. So nowhere else in ``coordination/`` or ``workers/``:

- a call of ``outcome_stamp`` (the outcome's seal, ``trust/evidence.py``): the sealer's
  alone, not even the door's;
- a write of the ``outcome_seal`` field: a keyword ``outcome_seal=``, ``seals=`` or
  ``seal=``, or a dict key ``"outcome_seal"`` / ``OUTCOME_FIELD`` (the door and the
  sealer);
- a call of the scripts that end todos: ``<x>.transitions.finish``
  (``lua/todo_finish.lua``), ``<x>.transitions.end`` (``lua/todo_end.lua``),
  ``<x>.transitions.start`` (``lua/todo_start.lua``, which ends a todo it skips or
  finds poisoned) or ``<x>.transitions.lost`` (``lua/todo_lost.lua``, which ends a
  poison todo);
- ``set_status_if`` (``lua/todo_update.lua``) moving a todo to an ended status
  (:data:`coordination.status.TERMINAL`);
- an import of ``Change`` from ``coordination.sweeps.progress`` (building one by hand).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coordination.status import TERMINAL, TodoStatus

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
DOOR = Path("coordination/sweeps/progress.py")
SEALER = Path("coordination/runtime/transitions.py")
ENDED = {s.name for s in TodoStatus if s in TERMINAL}
ENDING_SCRIPTS = {"start", "lost", "finish", "end"}  # Transitions.<script>
SEAL_KEYWORDS = {"outcome_seal", "seals", "seal"}


def _is_seal_key(key: ast.expr | None) -> bool:
    return (isinstance(key, ast.Constant) and key.value == "outcome_seal") or (
        isinstance(key, (ast.Name, ast.Attribute))
        and ast.unparse(key).rsplit(".", 1)[-1] == "OUTCOME_FIELD")


def _ends_a_todo(call: ast.Call) -> bool:
    """``set_status_if(sweep, todo, TodoStatus.<ended>, ...)``."""
    new = call.args[2] if len(call.args) > 2 else next(
        (k.value for k in call.keywords if k.arg == "new"), None)
    return (isinstance(new, ast.Attribute) and isinstance(new.value, ast.Name)
            and new.value.id == "TodoStatus" and new.attr in ENDED)


def endings(source: str, name: str = "<source>") -> list[str]:
    """What ``source`` does that only the door may: one line each, with its line."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.ImportFrom) and node.module == "coordination.sweeps.progress":
            if any(a.name == "Change" for a in node.names):
                found.append(f"{node.lineno}: imports Change (builds an ending by hand)")
        elif isinstance(node, ast.Dict):
            if any(_is_seal_key(k) for k in node.keys):
                found.append(f"{node.lineno}: writes the outcome_seal field")
        elif isinstance(node, ast.Call):
            f = node.func
            callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else ""
            if callee == "outcome_stamp":
                found.append(f"{node.lineno}: seals an outcome (outcome_stamp)")
            if any(k.arg in SEAL_KEYWORDS for k in node.keywords):
                found.append(f"{node.lineno}: writes the outcome_seal field")
            if (isinstance(f, ast.Attribute) and f.attr in ENDING_SCRIPTS
                    and isinstance(f.value, ast.Attribute) and f.value.attr == "transitions"):
                found.append(f"{node.lineno}: runs the ending script transitions.{f.attr}")
            if callee == "set_status_if" and _ends_a_todo(node):
                found.append(f"{node.lineno}: ends a todo with set_status_if")
    return found


def sources() -> list[Path]:
    return sorted(p.relative_to(ROOT) for d in ("coordination", "workers")
                  for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def _sealing(what: str) -> bool:
    return "outcome_stamp" in what or "outcome_seal field" in what


def test_no_place_but_the_door_ends_a_todo() -> None:
    found = [f"{path}:{what}" for path in sources() if path not in (DOOR, SEALER)
             for what in endings((ROOT / path).read_text(), str(path))]
    found += [f"{DOOR}:{what}" for what in endings((ROOT / DOOR).read_text(), str(DOOR))
              if "outcome_stamp" in what]
    found += [f"{SEALER}:{what}" for what in endings((ROOT / SEALER).read_text(), str(SEALER))
              if not _sealing(what)]
    assert found == [], "\n".join(
        found + [f"(every ending goes through the door in {DOOR}: end_todos, finish_run, "
                 "start_run, lose_run, after_script, cancel_orphans, fail_gate, "
                 "end_refused; resend for a todo put back in its queue; its seal is made "
                 f"by the runtime that writes it, {SEALER})"])


def test_the_door_and_the_sealer_do_each_thing_the_check_looks_for() -> None:
    """The door and the sealer are found doing all of it: the check is not looking at
    nothing."""
    door = " ".join(endings((ROOT / DOOR).read_text(), str(DOOR)))
    for what in ("outcome_seal field", "transitions.start", "transitions.lost",
                 "transitions.finish", "transitions.end", "set_status_if"):
        assert what in door, what
    sealer = " ".join(endings((ROOT / SEALER).read_text(), str(SEALER)))
    for what in ("outcome_stamp", "outcome_seal field"):
        assert what in sealer, what


@pytest.mark.parametrize("line", [
    "from coordination.sweeps.progress import Change, progress",
    "seal = outcome_stamp(keys, s, t, 0, 'failed', None)",
    "rt.transitions.end(s, [(t, 0)], TodoStatus.failed, NOT_STARTED, event={})",
    "d.rt.transitions.finish(s, t, lease=l, status=st, fields={}, event={})",
    "rt.transitions.start(s, t, repo='api', concurrency=1, preds=[], worker='w')",
    "rt.transitions.lost(s, t, repo='api', token='x', max_lost=3, now=0.0, why='gone')",
    "rt.checkpoints.set_status_if(s, t, TodoStatus.cancelled, {TodoStatus.running})",
    "rt.checkpoints.write(s, t, {OUTCOME_FIELD: None}, lease=l)",
    "rt.checkpoints.set_fields_if(s, [t], {'running'}, outcome_seal=None)",
    "rt.checkpoints.lost_write(s, t, seal=stamp)",
])
def test_a_second_door_is_found(line: str) -> None:
    assert len(endings(line)) == 1, line


def test_what_is_no_ending_passes() -> None:
    assert endings("rt.checkpoints.set_status_if(s, t, TodoStatus.queued, {TodoStatus.queued})\n"
                   "cp.get(OUTCOME_FIELD)\nturn.finish(TodoStatus.failed, {}, {})\n"
                   "from coordination.sweeps.progress import end_todos\n") == []


#: Where a gate's decision is counted and sealed: the runtime's count of its votes.
COUNTER = Path("coordination/runtime/gate_count.py")


def decisions(source: str, name: str = "<source>") -> list[str]:
    """Where ``source`` seals a gate's decision (``decision_stamp``) or runs the script
    that records a count (``decide_gate``): one line each, with its line."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Call):
            f = node.func
            callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else ""
            if callee in ("decision_stamp", "decide_gate"):
                found.append(f"{node.lineno}: {callee}")
    return found


def test_no_place_but_the_runtimes_count_seals_a_gates_decision() -> None:
    """A gate's votes are verified, counted, sealed and recorded in one place (a
    supervision pass's count, a gate opened again, a person's vote): a second place
    could record a count it did not verify, or seal one."""
    found = [f"{path}:{what}" for path in sources() if path != COUNTER
             for what in decisions((ROOT / path).read_text(), str(path))]
    assert found == [], "\n".join(found + [f"(a gate's count goes through {COUNTER})"])
    counter = " ".join(decisions((ROOT / COUNTER).read_text(), str(COUNTER)))
    assert "decision_stamp" in counter and "decide_gate" in counter
