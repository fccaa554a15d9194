"""The canvas compiler, by inspecting the signature tree: no broker, no worker.

One test does publish, on Celery's in-memory transport with no worker, to
check what reaches the messages (queues, task ids, stamps on chord headers).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from coordination.errors import PlanError
from coordination.keys import Keys
from coordination.planner import (
    analyze,
    build_plan_graph,
    compile_canvas,
    compile_levels,
    todo_signature,
)
from tests.unit.test_planner import catalog_from_edges, example

pytestmark = pytest.mark.timeout(120)
KEYS = Keys("coord")


def leaves(sig: Any) -> Iterator[Any]:
    """Task signatures of a canvas in execution order (iterative: canvases may be long)."""
    stack = [sig]
    while stack:
        s = stack.pop()
        if isinstance(s, (list, tuple)):  # a chord keeps its header as a plain list
            stack.extend(reversed(s))
            continue
        kind = s.get("subtask_type")
        if kind in ("chain", "group"):
            stack.extend(reversed(list(s["kwargs"]["tasks"])))
        elif kind == "chord":
            stack.append(s["kwargs"]["body"])
            stack.append(s["kwargs"]["header"])
        else:
            yield s


def compiled_example() -> Any:
    pg = build_plan_graph(example(), "PLAN-001")
    return compile_canvas(pg, analyze(pg), sweep_id="SW1", plan_id="PLAN-001", keys=KEYS)


def test_structure_is_a_chain_of_one_chord_per_level_then_finalize() -> None:
    canvas = compiled_example()
    assert canvas["subtask_type"] == "chain"
    steps = canvas["kwargs"]["tasks"]
    kinds = [(s["task"], s.get("subtask_type")) for s in steps]
    assert kinds == [
        ("coord.run_todo", None), ("coord.level_barrier", None),  # one todo: no chord
        ("celery.chord", "chord"), ("celery.chord", "chord"),
        ("coord.finalize_sweep", None),
    ]
    header = steps[2]["kwargs"]["header"]
    assert [s["kwargs"]["todo_id"] for s in header] == ["TODO-003", "TODO-004"]
    body = steps[2]["kwargs"]["body"]
    assert body["task"] == "coord.level_barrier"
    assert body["kwargs"] == {"sweep_id": "SW1", "level": 1, "todo_ids": ["TODO-003", "TODO-004"]}
    assert body["immutable"] and body["options"]["queue"] == "coord.control"
    fin = steps[-1]
    assert fin["kwargs"] == {"sweep_id": "SW1"} and fin["immutable"]
    assert fin["options"]["queue"] == "coord.control"


def test_todo_signature_options_ids_and_json_only_kwargs() -> None:
    sig = todo_signature("TODO-7", "api", sweep_id="S", plan_id="PLAN-1", keys=Keys("ns"))
    assert sig["task"] == "coord.run_todo" and sig["immutable"] is True
    assert sig["kwargs"] == {"sweep_id": "S", "plan_id": "PLAN-1", "todo_id": "TODO-7",
                             "repo": "api"}
    opts = sig["options"]
    assert opts["queue"] == "ns.repo.api" and opts["task_id"] == "S:TODO-7"
    stamps = {"coord_sweep": "S", "coord_plan": "PLAN-1", "coord_todo": "TODO-7"}
    assert opts["headers"] == stamps
    assert sorted(opts["stamped_headers"]) == sorted(stamps)
    assert all(opts[k] == v for k, v in stamps.items())
    assert json.loads(json.dumps(sig))["kwargs"] == sig["kwargs"]


def test_every_signature_in_the_tree_has_queue_id_and_stamps() -> None:
    for sig in leaves(compiled_example()):
        opts = sig["options"]
        assert opts["queue"] and opts["task_id"].startswith("SW1:")
        assert opts["coord_sweep"] == "SW1" and opts["coord_plan"] == "PLAN-001"
        assert sig["immutable"] is True


def test_custom_task_names_are_used() -> None:
    pg = build_plan_graph(example(), "PLAN-001")
    canvas = compile_canvas(pg, None, sweep_id="S", plan_id="PLAN-001", keys=KEYS,
                            task_name="t.run", barrier_name="t.bar", finalize_name="t.fin")
    assert {s["task"] for s in leaves(canvas)} == {"t.run", "t.bar", "t.fin"}


def test_compiling_a_cycle_raises_plan_error() -> None:
    pg = build_plan_graph(catalog_from_edges(2, [(0, 1), (1, 0)]), "PLAN-1")
    with pytest.raises(PlanError, match="cycle"):
        compile_canvas(pg, None, sweep_id="S", plan_id="PLAN-1", keys=KEYS)


def test_compile_levels_gives_one_applyable_spec_per_level() -> None:
    pg = build_plan_graph(example(), "PLAN-001")
    specs = compile_levels(pg, analyze(pg), sweep_id="S", plan_id="PLAN-001", keys=KEYS)
    assert [s.todo_ids for s in specs] == [["TODO-002"], ["TODO-003", "TODO-004"],
                                           ["TODO-005", "TODO-006"]]
    assert specs[0].signature()["subtask_type"] == "chain"
    assert specs[1].signature()["subtask_type"] == "chord"
    assert specs[2].barrier["kwargs"]["level"] == 2


def _layered(levels: int, width: int) -> Any:
    """``levels`` levels of ``width`` todos, each todo after one of the previous level."""
    n = levels * width
    edges = [(i - width, i) for i in range(width, n)]
    return build_plan_graph(catalog_from_edges(n, edges), "PLAN-1")


def test_a_thousand_levels_build_and_serialise_without_recursion() -> None:
    pg = _layered(1000, 2)
    canvas = compile_canvas(pg, None, sweep_id="S", plan_id="PLAN-1", keys=KEYS)
    assert len(canvas["kwargs"]["tasks"]) == 1001
    text = json.dumps(canvas)  # the C encoder recurses per nesting level: must stay shallow
    from celery import Signature

    again = Signature.from_dict(json.loads(text))
    assert len(again.tasks) == 1001
    import inspect

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 150)  # the depth does not grow with levels
    try:
        json.dumps(canvas)
    finally:
        sys.setrecursionlimit(old)


def test_ten_thousand_todos_compile() -> None:
    pg = _layered(1000, 10)
    canvas = compile_canvas(pg, None, sweep_id="S", plan_id="PLAN-1", keys=KEYS)
    assert sum(1 for s in leaves(canvas) if s["task"] == "coord.run_todo") == 10_000
    assert len(json.dumps(canvas)) > 0


@pytest.fixture
def memory_app() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """A Celery app on the in-memory transport, current for the test; records publishes."""
    from celery import Celery
    from celery._state import get_current_app
    from celery.signals import before_task_publish

    old = get_current_app()
    app = Celery("canvas-test", broker="memory://", backend="cache+memory://")
    app.set_current()
    sent: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, routing_key: str | None = None,
               **_: Any) -> None:
        sent.append({"routing_key": routing_key, **(headers or {})})

    before_task_publish.connect(record, weak=False)
    try:
        yield app, sent
    finally:
        before_task_publish.disconnect(record)
        old.set_current()


def test_published_messages_keep_queue_task_id_and_stamps(memory_app: Any) -> None:
    _, sent = memory_app
    pg = build_plan_graph(example(), "PLAN-001")
    spec = compile_levels(pg, None, sweep_id="S", plan_id="PLAN-001", keys=KEYS)[1]
    spec.signature().apply_async()  # a chord: the case where plain headers get lost
    by_id = {m["id"]: m for m in sent if m["task"] == "coord.run_todo"}
    assert set(by_id) == {"S:TODO-003", "S:TODO-004"}
    m = by_id["S:TODO-003"]
    assert m["routing_key"] == "coord.repo.api"
    assert m["coord_sweep"] == "S" and m["coord_todo"] == "TODO-003"
    assert m["stamps"]["coord_plan"] == "PLAN-001"


def test_whole_canvas_of_a_thousand_levels_applies(memory_app: Any) -> None:
    _, sent = memory_app
    pg = _layered(1000, 2)
    compile_canvas(pg, None, sweep_id="S", plan_id="PLAN-1", keys=KEYS).apply_async()
    assert sorted(m["id"] for m in sent) == ["S:TODO-0", "S:TODO-1"]  # level 0 only
