"""A sweep a push started posts ``coord/<PLAN>`` on the pushed commit: pending as its run
starts, success or failure as it ends (from ``recording.ended``: once, a second ender
of the run posts no more), nothing for another sweep, and nothing from a spec that
fails its signature check (a keyless Redis writer must not point coord's token at a
forge of its choosing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps import spec_store
from coordination.sweeps.notices import commit_status
from coordination.sweeps.planning import new_sweep_id
from coordination.sweeps.recording import ended
from coordination.sweeps.spec import PushSpec, SweepSpec
from coordination.sweeps.starts.triggers import push_trigger
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog
from tests.waiting import wait_for
from workers.embedded import embedded_workers

pytestmark = pytest.mark.timeout(90)

SHA = "a" * 40
KEY = "k" * 32


def push(sha: str = SHA) -> PushSpec:
    return {"repo": "api", "branch": "main", "sha": sha, "remote": "origin", "url": None,
            "context": f"coord/{PLAN}", "ui_url": "http://ui.example",
            "forge": {"kind": "github", "project": "acme/api",
                      "api": "https://forge.example/api/v3", "token_env": "GITHUB_TOKEN"}}


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every post: (sweep, sha, state), the forge never asked."""
    out: list[tuple[str, str, str]] = []

    def post(rt: Runtime, sweep_id: str, p: PushSpec, state: str, description: str) -> bool:
        out.append((sweep_id, p["sha"], state))
        return True

    monkeypatch.setattr(commit_status, "post", post)
    return out


def run_push(rt: Runtime, cat: Path, p: PushSpec | None) -> tuple[str, Any]:
    """A sweep of PLAN as a push starts it (its spec's ``push``), run to its end here."""
    svc = SweepService(rt, cat)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True, again=True)
    spec.push = p
    trigger = push_trigger("api", "main", p["sha"] if p else SHA, ["api", "web"])
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start_spec(spec, new_sweep_id(PLAN), trigger=trigger if p else None)
        st = svc.wait(sid, timeout=60)
    return sid, st


def catalog(tmp_path: Path, web: str = "true") -> Path:
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "web", "run": web},
    ])


def test_pending_then_the_end_on_the_pushed_commit(rt: Runtime, tmp_path: Path,
                                                   posted: list[tuple[str, str, str]]) -> None:
    sid, st = run_push(rt, catalog(tmp_path), push())
    assert st["status"] == "succeeded"
    assert posted == [(sid, SHA, "pending"), (sid, SHA, "success")]
    # a second ender (a pass after an ender that died before it delisted it) posts no
    # more: the record says it was posted
    ended(rt, sid, 0)
    assert posted[2:] == []
    # an end of a run the sweep moved on from posts nothing
    assert commit_status.run_ended(rt, sid, 1) is False


def test_a_failed_sweep_posts_failure(rt: Runtime, tmp_path: Path,
                                      posted: list[tuple[str, str, str]]) -> None:
    sid, st = run_push(rt, catalog(tmp_path, web="exit 3"), push())
    assert st["status"] == "failed"
    assert posted == [(sid, SHA, "pending"), (sid, SHA, "failure")]


def test_a_sweep_no_push_started_posts_nothing(rt: Runtime, tmp_path: Path,
                                               posted: list[tuple[str, str, str]]) -> None:
    _sid, st = run_push(rt, catalog(tmp_path), None)
    assert st["status"] == "succeeded" and posted == []


@pytest.mark.signed(key=KEY)
def test_a_forged_spec_sends_no_token_anywhere(signed_rt: Runtime, tmp_path: Path,
                                               posted: list[tuple[str, str, str]]) -> None:
    rt = signed_rt
    sid, st = run_push(rt, catalog(tmp_path), push())
    assert st["status"] == "succeeded" and len(posted) == 2
    # a keyless writer points the stored spec's forge elsewhere
    stored = rt.redis.hget(rt.keys.sweep(sid), "spec")
    text = json.loads(str(stored))  # (a record's fields are JSON: the spec's text a string)
    doc = json.loads(text) if isinstance(text, str) else text
    doc["push"]["forge"]["api"] = "https://attacker.example/api/v3"
    forged = json.dumps(doc)
    rt.redis.hset(rt.keys.sweep(sid), "spec", json.dumps(forged) if isinstance(text, str)
                  else forged)
    spec_store._spec_cache.clear()  # (this process read it before: read it again)
    assert commit_status.run_ended(rt, sid, 0) is False
    assert len(posted) == 2


def test_the_spec_keeps_the_push_and_leaves_it_out_when_none(rt: Runtime,
                                                            tmp_path: Path) -> None:
    svc = SweepService(rt, catalog(tmp_path))
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    assert "push" not in json.loads(spec.to_json())
    spec.push = push()
    assert SweepSpec.from_json(spec.to_json()).push == push()


def test_the_link_is_the_sweeps_page_when_the_web_view_is_known() -> None:
    assert commit_status.target_url(push(), "s-1") == "http://ui.example/sweeps/s-1"
    assert commit_status.target_url({**push(), "ui_url": None}, "s-1") is None


def test_an_ender_that_dies_before_it_posts_leaves_it_to_the_pass(
        rt: Runtime, tmp_path: Path, posted: list[tuple[str, str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's end is written, then its ender dies (nothing kept, nothing said, nothing
    posted): the supervision pass that says the end posts the final word, once."""
    from coordination.sweeps import recording
    from coordination.sweeps.supervision import supervise_once

    with monkeypatch.context() as m:
        m.setattr(recording, "ended", lambda *_a, **_k: False)  # the ender dies here
        svc = SweepService(rt, catalog(tmp_path))
        spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True, again=True)
        spec.push = push()
        with embedded_workers(rt, repos_of(svc)):
            sid = svc.start_spec(spec, new_sweep_id(PLAN),
                                 trigger=push_trigger("api", "main", SHA, ["api", "web"]))
            svc.wait(sid, timeout=60)
    assert posted == [(sid, SHA, "pending")]
    # (the pass's turn: another pass, the wait's, may hold it a few seconds)
    wait_for(lambda: supervise_once(rt, sid, grace=0), 30, "a supervision pass's turn")
    assert posted == [(sid, SHA, "pending"), (sid, SHA, "success")]
    ended(rt, sid, 0)
    assert len(posted) == 2


def test_a_resume_posts_pending_again_then_its_own_end(
        rt: Runtime, tmp_path: Path, posted: list[tuple[str, str, str]]) -> None:
    cat = catalog(tmp_path, web="test -e ok || exit 3")
    sid, st = run_push(rt, cat, push())
    assert st["status"] == "failed"
    svc = SweepService(rt, cat)
    (tmp_path / "eco" / "repos" / "web" / "ok").write_text("now\n")
    with embedded_workers(rt, repos_of(svc)):
        svc.resume(sid)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    assert posted == [(sid, SHA, "pending"), (sid, SHA, "failure"),
                      (sid, SHA, "pending"), (sid, SHA, "success")]


def test_a_forge_that_never_answers_is_said_within_its_timeout(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forge that takes the connection and says nothing: the post gives up after its
    tries (never waits longer), says why in the sweep's events, and raises nothing."""
    import socket
    import time

    monkeypatch.setattr(commit_status, "TIMEOUT", 0.5)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        p = push()
        p["forge"] = {**(p.get("forge") or {}),
                      "api": f"http://127.0.0.1:{mute.getsockname()[1]}/api/v3"}
        began = time.monotonic()
        assert commit_status.post(rt, "S-1", p, "pending", "running") is False
        assert time.monotonic() - began < 10
    said = [e.to_dict() for e in rt.events.read(sweep_id="S-1")]
    assert [(e["kind"], e["state"], e["sha"]) for e in said] == [
        ("commit_status.failed", "pending", SHA)]


def test_pending_is_posted_before_the_run_is_recorded(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the run can start before its pending: a supervision pass carrying on a
    recorded run while a slow starter still posts could run and end it, and the late
    pending would then stand over the final word (seen under load, a forge down)."""
    seen: list[tuple[str, object]] = []

    def post(rt_: Runtime, sweep_id: str, p: PushSpec, state: str, description: str) -> bool:
        rec = rt_.checkpoints.get_sweep_fields(sweep_id, ("status", "run"))
        seen.append((state, rec))
        return True

    monkeypatch.setattr(commit_status, "post", post)
    run_push(rt, catalog(tmp_path), push())
    assert [s for s, _ in seen] == ["pending", "success"]
    assert seen[0][1] is None, seen  # no record yet when pending was posted
