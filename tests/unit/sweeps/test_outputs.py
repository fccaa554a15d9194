"""Results passed between todos: ``$COORD_OUTPUT`` -> checkpoint -> ``COORD_IN_*``.

A chain A -> B -> C (and D beside them) runs with in-process workers: A writes
``KEY=VALUE`` lines, B one JSON object; C, which depends on A only through B, must
get A's values too; D, which depends on nothing, gets none. Each todo writes the
environment it saw to a file, so the assertions read what the command really got.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.outputs import (
    OUTPUT_CAP,
    OutputsRefused,
    env_name,
    external_inputs,
    inputs_env,
    parse_outputs,
)
from tests.unit.support.sweeps import PLAN, repos_of, run_sweep, write_catalog

SIGNING_KEY = "outputs-test-signing-key-0123456789abcdef"
pytestmark = [pytest.mark.timeout(120), pytest.mark.signed(key=SIGNING_KEY)]


def _seen(name: str) -> str:
    """A command part writing the todo's COORD_IN_*/COORD_INPUTS to ``seen/<name>``."""
    return f"env | grep -E '^COORD_IN' | sort > $SEEN/{name}"


def _chain(root: Path, *, b_fails_once: bool = False, undo: bool = False) -> Path:
    seen = root / "seen"
    seen.mkdir(parents=True, exist_ok=True)
    b_run = (f"{_seen('B')}; printf '{{\"ARTIFACT\": \"libcore-%s.whl\", \"size\": 42}}' "
             "\"$COORD_IN_TODO_001_VERSION\" > $COORD_OUTPUT")
    if b_fails_once:
        b_run = f"test -f $SEEN/B.ok || {{ touch $SEEN/B.ok; exit 3; }}; {b_run}"
    env = {"SEEN": str(seen)}
    todos = [
        {"id": "TODO-001", "repo": "api", "env": dict(env),
         "run": f"{_seen('A')}; printf 'VERSION=2.1.0\\n# a comment\\nsha=abc=def\\n' > $COORD_OUTPUT"},
        {"id": "TODO-002", "repo": "web", "env": dict(env), "blocked_by": ["TODO-001"], "run": b_run},
        {"id": "TODO-003", "repo": "jobs", "env": dict(env), "blocked_by": ["TODO-002"],
         "run": _seen("C")},
        {"id": "TODO-004", "repo": "jobs", "env": dict(env), "run": _seen("D")},
    ]
    return write_catalog(root, [{**t, "undo": "true"} if undo else t for t in todos])


def _env_of(root: Path, name: str) -> dict[str, str]:
    text = (root / "seen" / name).read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_outputs_reach_every_todo_after_it_directly_or_not(rt: Runtime, tmp_path: Path) -> None:
    catalog = _chain(tmp_path)
    svc, sid, st = run_sweep(rt, catalog)
    assert st["status"] == "succeeded", st
    todos = st["todos"]
    assert todos["TODO-001"]["outputs"] == {"VERSION": "2.1.0", "sha": "abc=def"}
    assert todos["TODO-002"]["outputs"] == {"ARTIFACT": "libcore-2.1.0.whl", "size": "42"}
    assert todos["TODO-003"]["outputs"] == {} and todos["TODO-004"]["outputs"] == {}

    assert _env_of(tmp_path, "A") == {"COORD_INPUTS": "{}"}
    b = _env_of(tmp_path, "B")
    assert b["COORD_IN_TODO_001_VERSION"] == "2.1.0" and b["COORD_IN_TODO_001_SHA"] == "abc=def"
    c = _env_of(tmp_path, "C")  # through B: A's too
    assert c["COORD_IN_TODO_001_VERSION"] == "2.1.0"
    assert c["COORD_IN_TODO_002_ARTIFACT"] == "libcore-2.1.0.whl"
    assert json.loads(c["COORD_INPUTS"]) == {
        "TODO-001": {"VERSION": "2.1.0", "sha": "abc=def"},
        "TODO-002": {"ARTIFACT": "libcore-2.1.0.whl", "size": "42"}}
    assert _env_of(tmp_path, "D") == {"COORD_INPUTS": "{}"}  # beside the chain: nothing

    # The events say which keys a todo kept (not their values).
    ev = [e for e in rt.events.read(sid) if e.kind == "todo.succeeded" and e.todo_id == "TODO-001"]
    assert ev and ev[-1].data.get("outputs") == ["VERSION", "sha"]

    # The sync keeps them in the catalog; `todo show` (the model) has them.
    svc.sync(sid)
    assert CatalogStore(catalog).load().todo("TODO-001").outputs == {
        "VERSION": "2.1.0", "sha": "abc=def"}


def test_a_later_sweep_gives_the_synced_outputs_of_todos_it_does_not_run(
        rt: Runtime, tmp_path: Path) -> None:
    catalog = _chain(tmp_path)
    svc, sid, st = run_sweep(rt, catalog)
    svc.sync(sid)
    (tmp_path / "seen" / "C").unlink()
    # Only TODO-003 is left to run (`todo run`): its inputs come from the catalog.
    from workers.embedded import embedded_workers

    CatalogStore(catalog).update(lambda doc: _set_pending(doc, "TODO-003"))
    with embedded_workers(rt, repos_of(svc)):
        sid2 = svc.start_spec(svc.todo_spec("TODO-003"), "TODO-003-again", kind="todo")
        st2 = svc.wait(sid2, timeout=60)
    assert st2["status"] == "succeeded", st2
    c = _env_of(tmp_path, "C")
    assert c["COORD_IN_TODO_001_VERSION"] == "2.1.0"
    assert c["COORD_IN_TODO_002_ARTIFACT"] == "libcore-2.1.0.whl"


def _set_pending(doc: Any, todo_id: str) -> None:
    for item in doc["coordination"]["todos"]:
        if item["id"] == todo_id:
            item["status"] = "pending"


def test_a_resume_carries_the_outputs_of_what_it_does_not_run_again(
        rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    catalog = _chain(tmp_path, b_fails_once=True)
    svc, sid, st = run_sweep(rt, catalog)
    assert st["status"] == "failed" and st["todos"]["TODO-002"]["status"] == "failed", st
    with embedded_workers(rt, repos_of(svc)):
        svc.resume(sid)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "succeeded", st
    # TODO-001 did not run again; its outputs still reached B and C.
    assert st["todos"]["TODO-001"]["attempts"] == 1
    assert _env_of(tmp_path, "C")["COORD_IN_TODO_001_VERSION"] == "2.1.0"
    assert st["todos"]["TODO-002"]["outputs"]["ARTIFACT"] == "libcore-2.1.0.whl"


@pytest.mark.parametrize("written, why", [
    (f"head -c {OUTPUT_CAP + 1} /dev/zero | tr '\\\\0' a > $COORD_OUTPUT", "over the 64 KiB cap"),
    ("echo 'not a pair' > $COORD_OUTPUT", "line 1 is not KEY=VALUE"),
    ("echo '{\"a\": ' > $COORD_OUTPUT", "not one JSON object"),
])
def test_results_it_cannot_keep_fail_the_todo_with_the_reason(
        rt: Runtime, tmp_path: Path, written: str, why: str) -> None:
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": written},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"], "run": "true"},
    ])
    _, _, st = run_sweep(rt, catalog)
    a = st["todos"]["TODO-001"]
    assert a["status"] == "failed" and a["exit_code"] == 0, a
    assert why in a["reason"] and "results were refused" in a["reason"], a["reason"]
    assert a["outputs"] == {}
    assert st["todos"]["TODO-002"]["status"] == "skipped"


def test_without_outputs_a_start_reads_nothing_more(rt: Runtime, tmp_path: Path) -> None:
    """No todo of the sweep kept results: a worker reads no checkpoint for inputs (the
    start script said so), so a sweep without outputs costs no extra command."""
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"], "run": "true"},
    ])
    from coordination.runtime.checkpoints import CheckpointStore

    calls: list[tuple[str, ...]] = []
    real = CheckpointStore.get_fields_all

    def spy(self: CheckpointStore, sweep_id: str, todo_ids: list[str],
            fields: tuple[str, ...]) -> Any:
        calls.append(fields)
        return real(self, sweep_id, todo_ids, fields)

    CheckpointStore.get_fields_all = spy  # type: ignore[method-assign]
    try:
        _, _, st = run_sweep(rt, catalog)
    finally:
        CheckpointStore.get_fields_all = real  # type: ignore[method-assign]
    assert st["status"] == "succeeded"
    assert not any("outputs" in fields for fields in calls)


# -- parsing and naming ----------------------------------------------------------------


def test_parse_lines_and_json() -> None:
    assert parse_outputs(b"A=1\n\n# note\nB=x=y\n") == {"A": "1", "B": "x=y"}
    assert parse_outputs(b' {"v": 1.5, "ok": true, "l": [1], "n": null}\n') == {
        "v": "1.5", "ok": "true", "l": "[1]", "n": ""}
    assert parse_outputs(b"") == {}
    assert parse_outputs(b"build-id=7\n") == {"build-id": "7"}
    assert parse_outputs(b'{"build-id": 7}') == {"build-id": "7"}


@pytest.mark.parametrize("data, why", [
    (b"1A=2", "is not a name"),
    (b'{"a b": "x"}', "is not a name"),
    (b'{"a": NaN}', "not a finite number"),
    (b"[1, 2]", "is not KEY=VALUE"),
    (b'{"a": 1', "not one JSON object"),
    (b"\xff=1", "not UTF-8"),
    (b"A=" + b"x" * OUTPUT_CAP, "over the 64 KiB cap"),
    (b"-x=1", "is not a name"),
    # two keys, one variable: fail naming both, never keep one of them silently
    (b"version=1\nVERSION=2\n", "'version' and 'VERSION' both become COORD_IN_<TODO>_VERSION"),
    (b'{"build-id": 1, "build_id": 2}', "'build-id' and 'build_id' both become"),
])
def test_parse_refuses_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(OutputsRefused, match=why):
        parse_outputs(data)


def test_a_key_with_a_dash_is_kept_and_named_with_an_underscore(rt: Runtime,
                                                                tmp_path: Path) -> None:
    """#39 item 12: ``build-id=...`` (issue #24: keys upper-cased, '-' as '_') reaches
    the next todo as ``COORD_IN_<TODO>_BUILD_ID``; it used to fail the todo."""
    seen = tmp_path / "seen"
    seen.mkdir()
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "echo build-id=b-77 > $COORD_OUTPUT"},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"], "env": {"SEEN": str(seen)},
         "run": _seen("B")},
    ])
    _, _, st = run_sweep(rt, catalog)
    assert st["status"] == "succeeded", st
    assert st["todos"]["TODO-001"]["outputs"] == {"build-id": "b-77"}
    b = _env_of(tmp_path, "B")
    assert b["COORD_IN_TODO_001_BUILD_ID"] == "b-77"
    assert json.loads(b["COORD_INPUTS"]) == {"TODO-001": {"build-id": "b-77"}}


def test_two_keys_of_one_name_fail_the_todo_naming_both(rt: Runtime, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "printf 'version=1\\nVERSION=2\\n' > $COORD_OUTPUT"},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"], "run": "true"},
    ])
    _, _, st = run_sweep(rt, catalog)
    a = st["todos"]["TODO-001"]
    assert a["status"] == "failed" and a["outputs"] == {}, a
    assert "'version' and 'VERSION' both become COORD_IN_<TODO>_VERSION" in a["reason"], a
    assert st["todos"]["TODO-002"]["status"] == "skipped"


def test_env_names_and_inputs() -> None:
    assert env_name("TODO-012", "build-id") == "COORD_IN_TODO_012_BUILD_ID"
    env = inputs_env({"TODO-001": {"version": "1"}})
    assert env == {"COORD_IN_TODO_001_VERSION": "1",
                   "COORD_INPUTS": '{"TODO-001":{"version":"1"}}'}
    assert inputs_env({}) == {"COORD_INPUTS": "{}"}


def test_external_inputs_walks_through_todos_in_the_sweep() -> None:
    # 1 -> 2 -> 3, 4 alone; the sweep runs 2 and 3; 1 kept results.
    preds = {"1": [], "2": ["1"], "3": ["2"], "4": []}
    given, of = external_inputs(preds, {"1": {"V": "x"}}, ["2", "3", "4"])
    assert given == {"1": {"V": "x"}}
    assert of == {"2": ["1"], "3": ["1"]}
    assert external_inputs(preds, {}, ["2", "3"]) == ({}, {})


def test_spec_keeps_external_inputs_and_stays_compatible(rt: Runtime, tmp_path: Path) -> None:
    catalog = _chain(tmp_path)
    svc = SweepService(rt, catalog)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    assert spec.inputs == {} and "inputs" not in spec.to_json()

    def done_with_outputs(doc: Any) -> None:
        for item in doc["coordination"]["todos"]:
            if item["id"] == "TODO-001":
                item["status"] = "completed"
                item["outputs"] = {"VERSION": "9"}

    CatalogStore(catalog).update(done_with_outputs)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    assert "TODO-001" not in spec.todos
    assert spec.inputs == {"TODO-001": {"VERSION": "9"}}
    assert spec.inputs_of == {"TODO-002": ["TODO-001"], "TODO-003": ["TODO-001"]}
    from coordination.sweeps.spec import SweepSpec

    assert SweepSpec.from_json(spec.to_json()).inputs_of == spec.inputs_of


# -- sealed outputs (issue #38 item 3): a forged record is never handed on ----------------



def _start(rt: Runtime, catalog: Path) -> tuple[SweepService, str]:
    """A sweep whose todos the test runs itself, one by one (no messages sent)."""
    from coordination.dispatch import CeleryDispatcher
    from coordination.sweeps.planning import new_sweep_id
    from tests.unit.support.sweeps import StubApp

    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)

    svc = SweepService(rt, catalog)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    return svc, svc.start_spec(spec, new_sweep_id(PLAN))


def _deploy_chain(tmp_path: Path) -> Path:
    """TODO-001 builds version 1.0; TODO-002 deploys what it is given (writes it down);
    TODO-003 beside them."""
    return write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "echo VERSION=1.0 > $COORD_OUTPUT"},
        {"id": "TODO-002", "repo": "web", "blocked_by": ["TODO-001"],
         "run": f'echo "$COORD_IN_TODO_001_VERSION $COORD_INPUTS" > {tmp_path}/deployed'},
        {"id": "TODO-003", "repo": "jobs", "run": "echo OTHER=x > $COORD_OUTPUT"},
    ])


def test_with_a_key_honest_outputs_are_sealed_and_handed_on(keyed_rt: Runtime,
                                                            tmp_path: Path) -> None:
    from workers.runner import WorkerInfo, run_todo

    svc, sid = _start(keyed_rt, _deploy_chain(tmp_path))
    for t in ("TODO-001", "TODO-003", "TODO-002"):
        run_todo(keyed_rt, sid, t, WorkerInfo(name="w"))
    cp = keyed_rt.checkpoints.get(sid, "TODO-001") or {}
    assert str((cp.get("outputs_seal") or {}).get("sig", "")).startswith("v1:"), cp
    assert (tmp_path / "deployed").read_text().startswith("1.0 ")
    st = svc.status(sid)
    assert st["status"] == "succeeded" and "outputs_refused" not in st["todos"]["TODO-001"]


@pytest.mark.parametrize("forge", ["unsigned", "copied from another todo"])
def test_forged_outputs_fail_the_dependent_before_it_runs(keyed_rt: Runtime, tmp_path: Path,
                                                          forge: str) -> None:
    """A keyless Redis writer replaces the build's outputs in its checkpoint (or copies
    another todo's sealed record there): the deploy fails without running, naming the
    record; `sweep status` keeps showing the outputs with why they were refused, and a
    sync leaves them out of the catalog."""
    from workers.runner import WorkerInfo, run_todo

    catalog = _deploy_chain(tmp_path)
    svc, sid = _start(keyed_rt, catalog)
    run_todo(keyed_rt, sid, "TODO-001", WorkerInfo(name="w"))
    run_todo(keyed_rt, sid, "TODO-003", WorkerInfo(name="w"))
    if forge == "unsigned":
        keyed_rt.checkpoints.set_fields(sid, "TODO-001", outputs={"VERSION": "6.6.6"},
                                        outputs_seal=None)
    else:
        other = keyed_rt.checkpoints.get(sid, "TODO-003") or {}
        keyed_rt.checkpoints.set_fields(sid, "TODO-001", outputs=other["outputs"],
                                        outputs_seal=other["outputs_seal"])
    run_todo(keyed_rt, sid, "TODO-002", WorkerInfo(name="w"))
    assert not (tmp_path / "deployed").exists()  # it never ran
    st = svc.status(sid)
    b = st["todos"]["TODO-002"]
    assert b["status"] == "failed" and b["exit_code"] is None, b
    record = f"outputs record of TODO-001 in sweep {sid}"
    reason = b["reason"] or ""
    assert "its inputs were refused" in reason and record in reason, reason
    assert ("unsigned" if forge == "unsigned" else "signature invalid") in reason
    a = st["todos"]["TODO-001"]
    assert a["outputs"] and record in a.get("outputs_refused", ""), a  # status keeps outputs
    svc.sync(sid)
    synced = CatalogStore(catalog).load().todo("TODO-001")
    assert synced is not None and synced.outputs == {}


def test_an_undo_refuses_forged_outputs_of_its_own_change(keyed_rt: Runtime,
                                                         tmp_path: Path) -> None:
    """An undo gets what its change wrote (COORD_IN_<ITSELF>_*): forged after the change
    ran, the undo fails without running; honest, it gets them."""
    from workers.embedded import embedded_workers

    got = tmp_path / "undone"
    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo VERSION=1.0 > $COORD_OUTPUT",
         "undo": f"echo $COORD_IN_TODO_001_VERSION >> {got}"},
        {"id": "TODO-002", "repo": "web", "run": "echo V=2 > $COORD_OUTPUT",
         "undo": f"echo $COORD_IN_TODO_002_V >> {got}"},
    ])
    svc = SweepService(keyed_rt, catalog)
    with embedded_workers(keyed_rt, {"api": 1, "web": 1}):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
        keyed_rt.checkpoints.set_fields(sid, "TODO-001", outputs={"VERSION": "6.6.6"})
        svc.rollback(sid)
        after = svc.wait(sid, timeout=60)
    assert got.read_text().split() == ["2"]  # the honest undo ran with its value
    a = after["todos"]["TODO-001"]
    assert a["status"] == "compensation_failed", a
    assert "its inputs were refused" in (a["reason"] or ""), a
    assert f"outputs record of TODO-001 in sweep {sid}" in (a["reason"] or "")


@pytest.mark.parametrize("forged", [False, True])
def test_outputs_pass_through_a_gate_only_with_their_seal(keyed_rt: Runtime, tmp_path: Path,
                                                          forged: bool) -> None:
    """A gate's approval is bound to its predecessors' outputs as they are (gates.py), and
    the todo after it reads them itself: rewritten while the gate waits, the binding the
    approval computes is not the one the gate opened under, and nothing is counted."""
    import time

    from workers.embedded import embedded_workers

    got = tmp_path / "deployed"
    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo VERSION=1.0 > $COORD_OUTPUT"},
        {"id": "TODO-002", "repo": "api", "gate": {"approvals": 1},
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "blocked_by": ["TODO-002"],
         "run": f"echo $COORD_IN_TODO_001_VERSION > {got}"},
    ], repos=("api", "web"))
    svc = SweepService(keyed_rt, catalog)
    with embedded_workers(keyed_rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="eager")
        end = time.monotonic() + 20
        while svc.status(sid)["todos"]["TODO-002"]["status"] != "awaiting_approval":
            assert time.monotonic() < end, svc.status(sid)
            time.sleep(0.02)
        if forged:
            keyed_rt.checkpoints.set_fields(sid, "TODO-001", outputs={"VERSION": "6.6.6"})
            with pytest.raises(UsageError, match="the binding its checkpoint holds"):
                svc.decide(sid, "TODO-002", "approve", who="bo")
            st = svc.status(sid)
            assert st["todos"]["TODO-002"]["status"] == "awaiting_approval", st
            assert st["todos"]["TODO-003"]["status"] == "pending" and not got.exists()
            svc.cancel(sid)
            return
        svc.decide(sid, "TODO-002", "approve", who="bo")
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded" and got.read_text() == "1.0\n", st


def test_an_earlier_runs_outputs_put_back_are_refused(keyed_rt: Runtime,
                                                     tmp_path: Path) -> None:
    """Outputs are sealed with the run whose outcome seal is beside them: run 0's sealed
    outputs put back beside run 1's outcome fail their seal; and run 0's whole checkpoint
    put back after run 1 ran the todo again (its outcome seal with it) is refused by the
    todo after it, which knows from its signed spec which run ran the todo last."""
    from coordination.sweeps.outputs import (InputsRefused, gather_inputs, outputs_fields,
                                             outputs_refusal)
    from coordination.sweeps.spec_store import load_spec
    from coordination.trust import signing
    from coordination.trust.evidence import outcome_stamp
    from workers.runner import WorkerInfo, run_todo

    keys = (SIGNING_KEY,)

    def ended(values: dict[str, str], run: int) -> dict[str, Any]:
        return {"status": "succeeded", "exit_code": 0,
                **outputs_fields(keys, "s-1", "TODO-001", values, run=run),
                "outcome_seal": outcome_stamp(keys, "s-1", "TODO-001", run, "succeeded", 0)}

    run0, run1 = ended({"VERSION": "1.0"}, 0), ended({"VERSION": "2.0"}, 1)
    assert outputs_refusal(keyed_rt.settings, "s-1", "TODO-001", run0) is None
    assert outputs_refusal(keyed_rt.settings, "s-1", "TODO-001", run1) is None
    mixed = {**run1, "outputs": run0["outputs"], "outputs_seal": run0["outputs_seal"]}
    why = outputs_refusal(keyed_rt.settings, "s-1", "TODO-001", mixed)
    assert why is not None and "outputs record of TODO-001 in sweep s-1" in why
    assert "signature invalid" in why, why

    svc, sid = _start(keyed_rt, _deploy_chain(tmp_path))
    run_todo(keyed_rt, sid, "TODO-001", WorkerInfo(name="w"))  # run 0: 1.0, sealed so
    rec = keyed_rt.checkpoints.get_sweep_fields(sid, ("spec",)) or {}
    doc = json.loads(str(rec["spec"]))
    # run 1 ran the build again (its spec, signed, says so)
    text = json.dumps({**doc, "run": 1, "dispatched": {"TODO-001": 1}})
    keyed_rt.checkpoints.update_sweep(sid, run=1, spec=text,
                                      **signing.sign(sid, 1, text, SIGNING_KEY))
    spec = load_spec(keyed_rt, sid, keyed_rt.checkpoints.get_sweep_fields(
        sid, ("spec", "run", "spec_sig", "spec_key_id")) or {})
    assert spec is not None and spec.last_run("TODO-001") == 1
    with pytest.raises(InputsRefused, match="of run 0, but run 1 ran TODO-001 again"):
        gather_inputs(keyed_rt, spec, "TODO-002")


def test_a_reapplied_todo_hands_its_new_outputs_on(rt: Runtime, tmp_path: Path) -> None:
    """Rolled back, then resumed with --reapply: A runs again and its outputs reach B."""
    from workers.embedded import embedded_workers

    catalog = _chain(tmp_path, undo=True)
    svc, sid, st = run_sweep(rt, catalog)
    assert st["status"] == "succeeded", st
    with embedded_workers(rt, repos_of(svc)):
        svc.rollback(sid)
        st = svc.wait(sid, timeout=60)
        assert st["status"] == "rolled_back", st
        for name in ("A", "B", "C", "D"):
            (tmp_path / "seen" / name).unlink()
        svc.resume(sid, reapply=True)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "succeeded", st
    assert _env_of(tmp_path, "B")["COORD_IN_TODO_001_VERSION"] == "2.1.0"
    assert _env_of(tmp_path, "C")["COORD_IN_TODO_002_ARTIFACT"] == "libcore-2.1.0.whl"
