"""Every kind of event declares its fields, each with a meaning, and its emitters in the
code carry exactly those (coordination.status.EVENT_FIELDS; issue #42).

What each Python ``emit`` and each Lua script sets is read from the code by the docs'
hook (docs/hooks/gen_ref.py, which writes the events reference from the same
declaration). A todo's end carries the fields its caller hands over: a worker's run
ends it with fields known at run time, which tests/integration/test_event_fields.py
reads from real ledgers; the other kinds are held here to exactly what the code sets.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from coordination.status import EVENT_DESCRIPTIONS, EVENT_FIELDS, EventKind

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
#: The kinds a worker's run ends a todo with (its fields: the run's, handed over).
RUN_ENDS = {"todo.succeeded", "todo.failed", "todo.cached", "todo.compensated",
            "todo.compensation_failed", "todo.cancelled"}


@pytest.fixture(scope="module")
def emitted(gen_ref: ModuleType) -> dict[str, set[str]]:
    """Event kind -> every field its emitters in the code set."""
    return {k: set().union(*places.values()) for k, places in gen_ref.emitters().items()}


def test_every_kind_declares_its_fields_and_each_has_a_meaning(gen_ref: ModuleType) -> None:
    assert set(EVENT_FIELDS) == set(EventKind) == set(EVENT_DESCRIPTIONS)
    assert gen_ref.undescribed_event_fields() == []


def test_no_emitter_sets_a_field_its_kind_does_not_declare(gen_ref: ModuleType) -> None:
    undeclared = [f"{kind} {sorted(fields - set(EVENT_FIELDS[EventKind(kind)]))} at {where}"
                  for kind, places in gen_ref.emitters().items()
                  for where, fields in places.items()
                  if fields - set(EVENT_FIELDS[EventKind(kind)])]
    assert undeclared == []


def test_each_kind_declares_exactly_what_its_emitters_set(emitted: dict[str, set[str]]) -> None:
    wrong = {}
    for kind in EventKind:
        if kind.value in RUN_ENDS:
            continue  # (the rest is a run's: the integration test reads it in ledgers)
        declared, found = set(EVENT_FIELDS[kind]), emitted.get(kind.value, set())
        if declared != found:
            wrong[kind.value] = {"declared, set by none": sorted(declared - found),
                                 "set, not declared": sorted(found - declared)}
    assert wrong == {}


def test_every_kind_but_the_reserved_one_has_an_emitter(gen_ref: ModuleType) -> None:
    where = gen_ref.emitters()
    silent = [k.value for k in EventKind if not where.get(k.value)]
    assert silent == ["sweep.started"]  # reserved: EVENT_DESCRIPTIONS says so
    assert "Reserved" in EVENT_DESCRIPTIONS[EventKind.sweep_started]


def test_the_emitters_are_read_whichever_way_they_name_their_kind(gen_ref: ModuleType) -> None:
    where = gen_ref.emitters()
    # a kind held in a variable (progress.end_sweep: cancelled, else finished)
    assert any(w.startswith("coordination/sweeps/progress.py") for w in where["sweep.cancelled"])
    assert set().union(*where["sweep.cancelled"].values()) == {"status", "reason", "run"}
    # **data handed on by the module's callers (waves._wave_done)
    assert {"succeeded", "todos", "accepted"} <= set().union(*where["wave.done"].values())
    # a todo ended with TodoStatus.X and event={...}; a Lua 'todo.' .. status
    assert "refused" in set().union(*where["todo.failed"].values())
    assert "reason" in where["todo.succeeded"]["gate_decide.lua"]
    assert "gate_decide.lua" not in where["todo.cached"]  # it ends a gate: succeeded, failed
    # a GateOpening's event, and what gate_open.lua adds to it
    assert set().union(*where["gate.waiting"].values()) == set(EVENT_FIELDS[EventKind.gate_waiting])


def test_the_events_page_gives_every_field_its_meaning(gen_ref: ModuleType) -> None:
    page = gen_ref.events_page()
    for kind in EventKind:
        section = page.split(f"## `{kind.value}`\n", 1)[1].split("\n## ", 1)[0]
        for field, meaning in EVENT_FIELDS[kind].items():
            assert f"| `{field}` | {gen_ref._cell(meaning)} |" in section, (kind, field)
        assert "Appended by: " in section
    cancelled = page.split("## `sweep.cancelled`\n", 1)[1].split("\n## ", 1)[0]
    assert "`coordination.sweeps.progress`" in cancelled
