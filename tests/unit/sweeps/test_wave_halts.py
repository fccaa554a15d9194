"""A wave's halt is two writes (the wave's state, then the sweep's pause or stop); a
pass beside the halter that runs between them must neither accept the halt nor start
the next wave: it finishes the halt. Only an unpause accepts one.

Each test runs an embedded sweep whose wave misses its criteria, and runs a second
progression pass (what a worker ending another todo, or the supervision pass, runs)
just after the halter wrote the wave halted and before it paused or stopped the sweep.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from coordination.cli.sweep_render import wave_line
from coordination.runtime.context import Runtime
from coordination.status import EventKind
from coordination.sweeps import SweepService
from coordination.sweeps import waves
from coordination.sweeps.progress import advance_waves
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec
from tests.unit.support.sweeps import PLAN, repos_of, with_plan, write_catalog

pytestmark = pytest.mark.timeout(60)

#: (the halting wave's place, atomic): the sweep is paused, ends, or rolls back.
CASES = {"a wave before the last": ("first", False), "the last wave": ("last", False),
         "an atomic sweep's wave": ("first", True)}


def catalog(tmp_path: Path, halting: str) -> Path:
    """TODO-001 (api) fails, TODO-002 (web) succeeds; the wave of api needs every todo
    to succeed, and comes first or last."""
    api = {"name": "api", "repos": ["api"], "require": {"success_rate": 1.0}}
    web = {"name": "web", "repos": ["web"]}
    return with_plan(write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "exit 3"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ], repos=("api", "web")), waves=[api, web] if halting == "first" else [web, api])


def pass_between_the_halts_writes(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """After the halter records the wave halted (its event with its write) and before
    it pauses or stops the sweep, run another pass; the sweeps it ran in whose
    ``wave.halted`` was said by then (checked by the test, not in the worker's thread)."""
    halted, ran, seen = waves._halted, [], []

    def pass_then_halt(rt_: Runtime, spec: SweepSpec, k: int, why: str, **kw: Any) -> None:
        if not ran:  # (the halter's: the pass's own goes on as it is)
            ran.append(spec.sweep_id)
            if [e.kind for e in rt.events.read(sweep_id=spec.sweep_id)
                    if e.kind == EventKind.wave_halted] == [EventKind.wave_halted]:
                seen.append(spec.sweep_id)
            advance_waves(rt, spec)
        halted(rt_, spec, k, why, **kw)

    monkeypatch.setattr(waves, "_halted", pass_then_halt)
    return seen


def once_paused(svc: SweepService, sid: str, timeout: float = 30) -> dict[str, Any]:
    """The sweep's status once it is paused (a failure if it ends first)."""
    end = time.monotonic() + timeout
    while (st := svc.status(sid))["status"] != "paused":
        assert st["status"] not in ("succeeded", "failed", "rolled_back"), st
        assert time.monotonic() < end, st
        time.sleep(0.02)
    return dict(st)


def wave_events(rt: Runtime, sid: str) -> list[tuple[str, str | None, bool]]:
    return [(e.kind, e.data.get("wave"), bool(e.data.get("accepted")))
            for e in rt.events.read(sweep_id=sid) if e.kind.startswith("wave.")]


@pytest.mark.parametrize("case", CASES)
def test_a_pass_between_a_halts_two_writes_neither_accepts_it_nor_starts_a_wave(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    from workers.embedded import embedded_workers

    halting, atomic = CASES[case]
    svc = SweepService(rt, catalog(tmp_path, halting))
    interleaved = pass_between_the_halts_writes(rt, monkeypatch)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, atomic=atomic)
        if halting == "first" and not atomic:
            st = once_paused(svc, sid)
        else:
            st = svc.wait(sid, timeout=30)
    assert interleaved == [sid]
    states = {w["name"]: w["state"] for w in st["waves"]}
    assert states["api"] == "halted", st["waves"]
    assert ("wave.done", "api", False) not in wave_events(rt, sid)
    assert all(not accepted for *_, accepted in wave_events(rt, sid))
    if halting == "first":
        # The next wave never started: its todo was not sent.
        assert states["web"] == "pending", st["waves"]
        assert ("wave.started", "web", False) not in wave_events(rt, sid)
        assert st["todos"]["TODO-002"]["status"] == ("cancelled" if atomic else "pending")
    if atomic:
        assert st["status"] == "rolled_back", st
    elif halting == "first":
        assert "wave api missed its criteria" in str(st["reason"]), st
        paused = [e for e in rt.events.read(sweep_id=sid) if e.kind == EventKind.sweep_paused]
        assert len(paused) == 1, paused  # paused once, by one of the two
    else:
        assert st["status"] == "failed", st


def test_an_unpause_accepts_the_halt_and_the_next_wave_runs(
        rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, catalog(tmp_path, "first"))
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        once_paused(svc, sid)
        # A pass while it is paused changes nothing.
        spec = load_spec(rt, sid)
        assert spec is not None
        advance_waves(rt, spec)
        assert [w["state"] for w in svc.status(sid)["waves"]] == ["halted", "pending"]
        assert svc.unpause(sid)["changed"] is True
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "failed" and st["todos"]["TODO-002"]["status"] == "succeeded", st
    assert [(w["state"], w.get("reason")) for w in st["waves"]] == [
        ("done", "accepted by an unpause after it halted"), ("done", None)]
    assert "wave api: done - 0 of 1 succeeded, needs 100%: accepted by an unpause after it " \
        "halted" in [wave_line(w) for w in st["waves"]]
    assert wave_events(rt, sid)[-4:] == [
        ("wave.halted", "api", False), ("wave.done", "api", True),
        ("wave.started", "web", False), ("wave.done", "web", False)]


def test_a_pass_right_after_the_unpauses_write_says_the_next_wave_after_the_accepted_one(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that runs just after the unpause's write (a worker's supervision pass: it
    sees the halted wave done on a running sweep) starts the next wave; the accepted
    wave's ``wave.done`` was written with the unpause's write, so it comes first (it
    came after: the unpause said so once its write returned)."""
    from coordination.runtime.checkpoints import CheckpointStore
    from workers.embedded import embedded_workers

    svc = SweepService(rt, catalog(tmp_path, "first"))
    cas, passes = CheckpointStore.set_sweep_status, []

    def cas_then_pass(self: CheckpointStore, sweep_id: str, new: str, *a: Any,
                      **kw: Any) -> bool:
        moved = cas(self, sweep_id, new, *a, **kw)
        if moved and kw.get("waves_accepted") and not passes:
            spec = load_spec(rt, sweep_id)
            assert spec is not None
            passes.append(sweep_id)
            advance_waves(rt, spec)  # the next wave starts here, before unpause goes on
        return moved

    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        once_paused(svc, sid)
        monkeypatch.setattr(CheckpointStore, "set_sweep_status", cas_then_pass)
        assert svc.unpause(sid)["changed"] is True
        st = svc.wait(sid, timeout=30)
    assert passes == [sid]
    assert st["todos"]["TODO-002"]["status"] == "succeeded", st
    assert wave_events(rt, sid)[-4:] == [
        ("wave.halted", "api", False), ("wave.done", "api", True),
        ("wave.started", "web", False), ("wave.done", "web", False)]
