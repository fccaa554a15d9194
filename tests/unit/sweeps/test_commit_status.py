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
from coordination.sweeps.starts.push_source import FETCH_FIELDS, differences, source_of
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
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forge that takes the connection and says nothing: the post gives up after its
    tries (never waits longer), says why in the sweep's events, and raises nothing."""
    import socket
    import time

    monkeypatch.setattr(commit_status, "TIMEOUT", 0.5)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        p = own_push(rt, tmp_path, f"http://127.0.0.1:{mute.getsockname()[1]}/api/v3")
        began = time.monotonic()
        assert commit_status.post(rt, "S-1", p, "pending", "running") is False
        assert time.monotonic() - began < 10
    said = [e.to_dict() for e in rt.events.read(sweep_id="S-1")]
    assert [(e["kind"], e["state"], e["sha"]) for e in said] == [
        ("commit_status.failed", "pending", SHA)]
    assert "did not answer" in said[0]["reason"] or "Timeout" in said[0]["reason"], said


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


# -- The forge is the poster's own catalog's: a spec a keyless Redis writer changed sends
# -- no token anywhere --------------------------------------------------------------------

API = "https://forge.example/api/v3"


def forge_catalog(root: Path, api: str = API, forge: bool = True) -> Path:
    """A catalog of api (with ``forge:`` at ``api``, unless not ``forge``) and web."""
    root.mkdir(parents=True, exist_ok=True)
    eco = root / "ecosystem.yaml"
    line = (f', forge: {{kind: github, project: acme/api, api: "{api}", '
            "token_env: GITHUB_TOKEN}" if forge else "")
    eco.write_text("version: 1\nrepos:\n"
                   f"  - {{name: api, path: repos/api, url: 'https://git.example/api.git'{line}}}\n"
                   "  - {name: web, path: repos/web}\n"
                   "coordination: {todos: []}\n")
    return eco


def own_push(rt: Runtime, root: Path, api: str = API) -> PushSpec:
    """A push of api as a starter of this catalog writes it, the catalog this runtime's
    process was given."""
    from coordination.catalog.file.store import CatalogStore

    eco = forge_catalog(root / "own", api)
    rt.worker_catalog = eco
    src = source_of(CatalogStore(eco).load(), "api")
    assert src is not None and src.forge is not None
    return {**push(), "forge": dict(src.forge), "url": src.url, "remote": src.remote}


@pytest.fixture
def forged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every forge a post opens and what it posts: (api, token_env, state), never sent."""
    import coordination.forge as forges

    out: list[tuple[str, str, str]] = []

    class Client:
        def __init__(self, spec: Any) -> None:
            self.spec = spec

        def post_status(self, sha: str, status: Any) -> None:
            out.append((self.spec.api, self.spec.token_env, status.state.value))

    monkeypatch.setattr(forges, "open_forge", lambda spec, **_k: Client(spec))
    return out


def refusals(rt: Runtime, sweep_id: str) -> list[str]:
    return [e.to_dict()["reason"] for e in rt.events.read(sweep_id=sweep_id)
            if e.to_dict()["kind"] == "commit_status.failed"]


def test_the_catalogs_forge_is_posted_to_when_the_spec_names_it(
        rt: Runtime, tmp_path: Path, forged: list[tuple[str, str, str]]) -> None:
    assert commit_status.post(rt, "S-1", own_push(rt, tmp_path), "pending", "running")
    assert forged == [(API, "GITHUB_TOKEN", "pending")]
    assert refusals(rt, "S-1") == []


@pytest.mark.parametrize(("field", "value"), [
    ("api", "https://attacker.example/api/v3"), ("token_env", "AWS_SECRET_ACCESS_KEY"),
    ("kind", "gitea"), ("project", "other/api"), ("auth", "app"),
    ("app_key_env", "SSH_PRIVATE_KEY"), ("ca_file", "/tmp/theirs.pem")])
def test_a_spec_whose_forge_is_not_the_catalogs_posts_nothing_and_says_which_field(
        rt: Runtime, tmp_path: Path, forged: list[tuple[str, str, str]], field: str,
        value: str) -> None:
    p = own_push(rt, tmp_path)
    p["forge"] = {**(p.get("forge") or {}), field: value}
    assert commit_status.post(rt, "S-1", p, "success", "done") is False
    assert forged == []  # no forge opened: neither the spec's nor the catalog's
    [why] = refusals(rt, "S-1")
    assert f"forge.{field} (spec {value!r}" in why and "catalog" in why, why


def test_no_catalog_at_hand_posts_nothing(rt: Runtime, forged: list[tuple[str, str, str]]
                                          ) -> None:
    assert rt.own_catalog is None
    assert commit_status.post(rt, "S-1", push(), "pending", "running") is False
    assert forged == []
    [why] = refusals(rt, "S-1")
    assert "no catalog of its own" in why, why


def test_a_repo_gone_from_the_catalog_or_its_forge_posts_nothing(
        rt: Runtime, tmp_path: Path, forged: list[tuple[str, str, str]]) -> None:
    p = own_push(rt, tmp_path)
    assert commit_status.post(rt, "S-1", {**p, "repo": "gone"}, "pending", "running") is False
    forge_catalog(tmp_path / "own", forge=False)  # (the catalog edited since: no forge:)
    assert commit_status.post(rt, "S-1", p, "pending", "running") is False
    assert forged == []
    gone, no_forge = refusals(rt, "S-1")
    assert "repo 'gone' is not in its catalog" in gone, gone
    assert "repo 'api' has no forge:" in no_forge, no_forge


def test_a_status_not_named_coords_posts_nothing(
        rt: Runtime, tmp_path: Path, forged: list[tuple[str, str, str]]) -> None:
    """(A writer would post success as another CI's required check.)"""
    p = own_push(rt, tmp_path)
    assert commit_status.post(rt, "S-1", {**p, "context": "ci/build"}, "success", "ok") is False
    assert forged == []
    assert "'ci/build' is not one of coord's" in refusals(rt, "S-1")[0]


def test_a_push_sweeps_start_and_end_post_to_the_catalogs_forge(
        rt: Runtime, tmp_path: Path, forged: list[tuple[str, str, str]]) -> None:
    """The whole path, start to end, with no post stubbed: the starter's and the
    ender's posts both go to the catalog's forge."""
    p = own_push(rt, tmp_path)
    sid, st = run_push(rt, catalog(tmp_path), p)
    assert st["status"] == "succeeded"
    assert forged == [(API, "GITHUB_TOKEN", "pending"), (API, "GITHUB_TOKEN", "success")]
    assert refusals(rt, sid) == []


def test_differences_name_each_field_with_both_values(rt: Runtime, tmp_path: Path) -> None:
    from coordination.sweeps.starts.push_source import Source

    src = Source("origin", "https://git.example/api.git", {"api": API, "token_env": "T"})
    same: PushSpec = {**push(), "remote": "origin", "url": "https://git.example/api.git",
                      "forge": {"api": API, "token_env": "T"}}
    assert differences(same, src, ("forge", *FETCH_FIELDS)) == []
    theirs: PushSpec = {**same, "remote": "/srv/theirs.git", "url": None,
                        "forge": {"api": API, "token_env": "CLOUD_KEY", "ca_file": "x"}}
    assert differences(theirs, src, ("forge", *FETCH_FIELDS)) == [
        "forge.ca_file (spec 'x', catalog None)",
        "forge.token_env (spec 'CLOUD_KEY', catalog 'T')",
        "remote (spec '/srv/theirs.git', catalog 'origin')",
        "url (spec None, catalog 'https://git.example/api.git')"]
    # (a forge that is not even a mapping)
    odd: PushSpec = {**same, "forge": "http://x"}  # type: ignore[typeddict-item]
    assert differences(odd, src, ("forge",)) == [
        f"forge (spec 'http://x', catalog {src.forge!r})"]
