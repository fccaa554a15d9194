"""Landing a change through pull requests (``land: pr``) over real git: publish, status,
land in order, a moved head refused, a refused merge -> partially_landed -> revert pull
requests (#60). The forge's API is in memory over the bare remotes (forge_world.py); each
kind's HTTP lifecycle is test_forge_lifecycle.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.change_repos import git
from tests.integration.forge_world import PullWorld, remote_log

pytestmark = pytest.mark.timeout(120)

NAMES = ["libz", "core", "api"]


@pytest.fixture
def pw(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> PullWorld:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    get_settings.cache_clear()
    return PullWorld(tmp_path, NAMES)


def test_publish_opens_one_pull_request_per_repo_and_pushes_only_the_branch(pw: PullWorld) -> None:
    base = {r: pw.repos.remote_head(r) for r in NAMES}
    cands = pw.draft()
    pw.verify()
    out = pw.publisher().publish()
    assert out.ok, out.document()
    assert [(r.repo, r.action) for r in out.repos] == [(r, "opened") for r in NAMES]
    for r in NAMES:
        assert pw.repos.remote_head(r) == base[r]  # never the base
        assert pw.repos.remote_head(r, "chg") == cands[r]
    again = pw.publisher().publish()
    assert [(r.repo, r.action) for r in again.repos] == [(r, "up_to_date") for r in NAMES]
    for r in NAMES:
        f = pw.forges.of(r)
        assert len(f.prs) == 1
        pr = f.prs[1]
        assert pr.labels == ["coord:PLAN-001"]
        assert f.statuses[cands[r]]["coord/verify"].state.value == "success"
    core_body = pw.forges.of("core").prs[1].body
    assert "Depends-On: https://stub.invalid/acme/libz/pull/1" in core_body
    assert "Depends-On" not in pw.forges.of("libz").prs[1].body


def test_land_merges_in_order_only_when_mergeable(pw: PullWorld) -> None:
    base = {r: pw.repos.remote_head(r) for r in NAMES}
    cands = pw.draft()
    pw.verify()
    pw.protect(approvals=1)
    pw.publisher().publish()
    prep = pw.lander().prepare(dry_run=True)
    assert not prep.ok
    assert [(b.kind, b.id) for b in prep.blockers] == [("forge", r) for r in NAMES]
    assert all("needs 1 more approving review" in b.why for b in prep.blockers)
    doc = pw.status()
    assert doc["landable"] is False
    assert doc["repos"]["api"]["pr"]["number"] == 1
    for r in NAMES:
        pw.approve(r)
    pw.rt.changes.forget_forge_views(pw.plan)
    assert pw.status()["landable"] is True, pw.status()["blockers"]
    out = pw.lander().land()
    assert out.state == "landed", out.reason
    assert [p for p, _, _ in pw.forges.merges] == [f"acme/{r}" for r in NAMES]
    for r in NAMES:
        head = pw.repos.remote_head(r)
        assert git(pw.repos.remote(r), "rev-parse", f"{head}^1") == base[r]
        assert git(pw.repos.remote(r), "rev-parse", f"{head}^2") == cands[r]
    assert pw.status()["state"] == "landed"
    after = pw.publisher().publish()  # after the landing: nothing to publish, nothing refused
    assert after.ok and [r.action for r in after.repos] == ["landed"] * 3


def test_a_head_moved_after_verification_is_never_merged(pw: PullWorld) -> None:
    pw.draft()
    pw.verify()
    pw.protect(approvals=0)
    pw.publisher().publish()
    ld = pw.lander()
    prep = ld.prepare()
    assert prep.ok and prep.manifest is not None, prep.problems
    # someone pushes to core's pull request branch after prepare
    other = pw.root / "other-core"
    git(pw.root, "clone", "-q", "-b", "chg", str(pw.repos.remote("core")), str(other))
    (other / "late.txt").write_text("late\n")
    git(other, "add", "-A")
    git(other, "commit", "-qm", "late")
    git(other, "push", "-q", "origin", "HEAD:chg")
    out = ld.commit(prep.manifest)
    assert out.state == "partially_landed", out.reason
    assert out.reason is not None and "core: pull request #1" in out.reason
    assert "not merged" in out.reason
    assert [p for p, _, _ in pw.forges.merges] == ["acme/libz"]
    assert pw.forges.of("core").prs[1].state.value == "open"


def test_a_refused_merge_stops_partially_landed_and_revert_opens_revert_prs(
        pw: PullWorld) -> None:
    base = {r: pw.repos.remote_head(r) for r in NAMES}
    pw.draft()
    pw.verify()
    pw.publisher().publish()
    pw.forges.of("api").refusals[1] = "a required status check is expected"
    out = pw.lander().land()
    assert out.state == "partially_landed"
    assert out.reason is not None
    assert "api: pull request #1" in out.reason and "a required status check" in out.reason
    assert out.left_landed == ["libz", "core"]
    doc = pw.status()
    assert doc["state"] == "partially_landed"
    rv = pw.reverter()
    plans, _ = rv.check()
    assert [(p.repo, p.action) for p in plans] == [("api", "skip"), ("core", "revert"),
                                                   ("libz", "revert")]
    pw.protect(approvals=1, checks=())  # a revert is reviewed like any change
    res = rv.revert()
    assert res.state == "reverting", res.reason
    # verified like a change: nothing merges before the verify todos passed on the
    # revert candidates (each revert commit, and api's base)
    assert res.reason is not None and "have not passed on the revert candidates" in res.reason
    pw.verify()
    res = pw.reverter().revert()
    assert res.state == "reverting", res.reason
    assert res.reason is not None and "core: revert pull request #2" in res.reason
    assert "needs 1 more approving review" in res.reason
    assert pw.status()["repos"]["core"]["state"] == "reverting"
    st = pw.rt.changes.read(pw.plan)
    assert sorted(st.revert_pulls) == ["core", "libz"]
    for r in ("core", "libz"):
        f = pw.forges.of(r)
        rp = f.prs[st.revert_pulls[r].number]
        assert rp.head == "coord-revert/chg" and rp.base == "main"
        assert pw.repos.remote_head(r, "coord-revert/chg") == st.revert_pulls[r].head
    for r in ("core", "libz"):  # approved: merged in order (consumers first)
        f = pw.forges.of(r)
        f.get_pr(st.revert_pulls[r].number)
        f.review(st.revert_pulls[r].number, "bob")
    again = pw.reverter().revert()
    assert again.state == "reverted", again.reason
    assert [p for p, _, _ in pw.forges.merges][-2:] == ["acme/core", "acme/libz"]
    for r in ("core", "libz"):
        head = pw.repos.remote_head(r)
        assert (git(pw.repos.remote(r), "rev-parse", f"{head}^{{tree}}")
                == git(pw.repos.remote(r), "rev-parse", f"{base[r]}^{{tree}}"))
    assert pw.status()["state"] == "reverted"
    assert remote_log(pw, "api", 1) == ["seed"]


def _closed_event(pw: PullWorld, repo: str, number: int) -> bytes:
    import json

    head = pw.rt.changes.read(pw.plan).pulls[repo].head
    return json.dumps({"action": "closed", "number": number,
                       "pull_request": {"number": number, "state": "closed", "merged": False,
                                        "head": {"sha": head, "ref": "chg"},
                                        "base": {"ref": "main"}},
                       "repository": {"full_name": f"acme/{repo}"}}).encode()


def test_a_webhook_with_a_good_signature_updates_status_a_bad_one_changes_nothing(
        pw: PullWorld) -> None:
    from starlette.testclient import TestClient

    from coordination.forge.webhooks import sign
    from coordination.ui.app import create_app
    from coordination.ui.hooks import Hooks

    pw.draft()
    pw.verify()
    pw.publisher().publish()
    before = pw.status()["repos"]["api"]["pr"]
    assert before["state"] == "open"
    pw.forges.of("api").close_pr(1)  # by hand, on the forge
    body = _closed_event(pw, "api", 1)
    env = {"COORD_FORGE_WEBHOOK_SECRET": "s3cret"}
    hooks = Hooks(pw.rt, pw.catalog, env=env, factory=pw.forges)
    client = TestClient(create_app(pw.rt, pw.catalog, hooks=hooks), base_url="http://localhost")
    kept = pw.rt.changes.forge_views(pw.plan)
    for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                    sign("github", body, "not the secret")):
        res = client.post("/hooks/github", content=body,
                          headers={"X-GitHub-Event": "pull_request", **headers})
        assert res.status_code == 401, res.text
        assert pw.rt.changes.forge_views(pw.plan) == kept  # nothing changed
    res = client.post("/hooks/github", content=body,
                      headers={"X-GitHub-Event": "pull_request", **sign("github", body, "s3cret")})
    assert res.status_code == 200, res.text
    assert res.json()["updated"] == {pw.plan: ["api"]}
    calls = len(pw.forges.of("api").calls)
    doc = pw.status()  # no polling: the webhook's view is taken
    assert len(pw.forges.of("api").calls) == calls
    assert doc["repos"]["api"]["pr"]["state"] == "closed"
    assert doc["repos"]["api"]["pr"]["source"] == "webhook"
    assert any(b["id"] == "api" and "closed by hand" in b["why"] for b in doc["blockers"])
    assert client.post("/hooks/bitbucket", content=body).status_code == 404
    # the web view's and MCP's document are the same (what the webhook left, read again)
    page = client.get(f"/api/changes/{pw.plan}").json()
    assert page["repos"]["api"]["pr"]["state"] == "closed"
    from coordination.mcp_server.operations import Operations

    got = Operations(pw.catalog).change_status(pw.plan)
    assert got["repos"]["api"]["pr"]["state"] == "closed"  # type: ignore[index,call-overload]
    with pytest.raises(Exception, match="api"):  # an agent scoped to other repos: refused
        Operations(pw.catalog, repos=["nope"]).change_status(pw.plan)


def test_the_train_lands_a_pr_change_through_its_pull_requests(pw: PullWorld) -> None:
    from coordination.change.train import run_train

    pw.draft()
    pw.verify()
    pw.publisher().publish()
    pw.rt.changes.enqueue([pw.plan])
    out = run_train(pw.rt, lambda p: (pw.cp, {}), lambda cp: "not to be called",
                    factory=pw.forges)
    assert [r["state"] for r in out] == ["landed"], out
    assert [p for p, _, _ in pw.forges.merges] == [f"acme/{r}" for r in NAMES]


def _coord(w: PullWorld | object, *args: str) -> "subprocess.CompletedProcess[str]":
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITEA_TOKEN")}
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                           str(w.catalog), *args],  # type: ignore[attr-defined]
                          capture_output=True, text=True, timeout=120, env=env)


def test_bad_input_exits_2_and_changes_nothing(tmp_path: Path, redis_url: str) -> None:
    from tests.integration.change_repos import World

    w = World(tmp_path, NAMES)  # no forge on any repo
    w.draft()
    res = _coord(w, "change", "publish", "PLAN-001")
    assert res.returncode == 2, res.stderr
    assert "none of its repos names a forge" in res.stderr and "add forge:" in res.stderr
    assert w.rt.changes.read("PLAN-001").pulls == {}
    assert git(w.repos.remote("api"), "branch", "--list", "chg") == ""
    res = _coord(w, "change", "publish", "PLAN-001", "--pr", "api=x")
    assert res.returncode == 2 and "expected REPO=NUMBER" in res.stderr, res.stderr
    text = w.catalog.read_text()
    w.catalog.write_text(text.replace("land: push", "land: pr"))  # land: pr, no forge
    res = _coord(w, "change", "land", "PLAN-001", "--dry-run")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "lands by pull request (land: pr) but repos libz, core, api name no forge" in res.stderr
    w.catalog.write_text(text.replace("path: checkouts/api",
                                      "path: checkouts/api, forge: {kind: bitbucket, "
                                      "project: acme/api}"))
    res = _coord(w, "change", "publish", "PLAN-001")
    assert res.returncode == 2 and "bitbucket" in res.stderr, res.stderr


def test_a_pull_request_number_not_of_the_change_is_refused_and_nothing_changes(
        pw: PullWorld) -> None:
    from coordination.errors import UsageError
    from coordination.forge.base import NewPullRequest

    pw.draft()
    pw.verify()
    f = pw.forges.of("api")
    git(pw.repos.checkout("api"), "push", "-q", "origin", "HEAD:feature-x")
    other = f.open_pr(NewPullRequest(head="feature-x", base="main", title="someone's"))
    with pytest.raises(UsageError, match="is not this change's: it is from 'feature-x'"):
        pw.publisher().publish(adopt={"api": other.number})
    with pytest.raises(UsageError, match="has no pull request #99"):
        pw.publisher().publish(adopt={"api": 99})
    with pytest.raises(UsageError, match="nope is not a repo of PLAN-001"):
        pw.publisher().publish(adopt={"nope": 1})
    assert pw.rt.changes.read(pw.plan).pulls == {}
    for r in NAMES:
        assert git(pw.repos.remote(r), "branch", "--list", "chg") == ""
    assert [n for n, _ in f.calls if n == "open_pr"] == ["open_pr"]  # (the test's own)


def test_a_change_branch_named_as_a_base_is_never_pushed(tmp_path: Path, redis_url: str) -> None:
    from coordination.errors import UsageError

    pw = PullWorld(tmp_path, ["libz", "core"], branch="main")  # the change's branch: main
    before = {r: pw.repos.remote_head(r) for r in ("libz", "core")}
    with pytest.raises(UsageError, match="the change branch 'main' is its base"):
        pw.publisher().publish()
    assert {r: pw.repos.remote_head(r) for r in ("libz", "core")} == before
    assert pw.repos.pushes() == []
    assert all(not f.calls for f in pw.forges.forges.values())


def test_a_pull_request_merged_by_hand_is_noticed_and_never_merged_again(pw: PullWorld) -> None:
    pw.draft()
    pw.verify()
    pw.publisher().publish()
    doc = pw.status()
    calls = sum(len(f.calls) for f in pw.forges.forges.values())
    pw.status()  # within the poll interval: what was read is taken, nothing asked
    assert sum(len(f.calls) for f in pw.forges.forges.values()) == calls
    assert all(r["pr"]["cached"] is False for r in doc["repos"].values())
    pw.forges.of("core").merge_by_hand(1)  # someone merged core's by hand
    pw.rt.changes.forget_forge_views(pw.plan)
    doc = pw.status()
    assert doc["repos"]["core"]["pr"]["state"] == "merged"
    said = [b["why"] for b in doc["blockers"] if b["id"] == "core"]
    assert any("was merged by hand" in w for w in said), said
    prep = pw.lander().prepare(dry_run=True)
    assert not prep.ok and any("merged by hand" in p for p in prep.problems), prep.problems
    assert pw.forges.merges == [("acme/core", 1, "merge")]  # the hand's merge, no other
    again = pw.publisher().publish()
    core = next(r for r in again.repos if r.repo == "core")
    assert core.action == "refused" and "was merged by hand" in str(core.why)


def test_a_check_event_updates_the_pull_requests_checks(pw: PullWorld) -> None:
    import json

    from coordination.catalog.file.store import CatalogStore
    from coordination.change.pulls.forge_events import apply_event
    from coordination.errors import ForgeUnavailable
    from coordination.forge.webhooks import parse_event

    pw.draft()
    pw.verify()
    pw.publisher().publish()
    head = pw.rt.changes.read(pw.plan).pulls["api"].head
    body = json.dumps({"sha": head, "context": "ci/test", "state": "failure",
                       "repository": {"full_name": "acme/api"}}).encode()
    event = parse_event("github", {"X-GitHub-Event": "status"}, body)
    assert event is not None
    # the forge does not answer the read after the event: the event's own word is kept
    pw.forges.of("api").fail_next["mergeability"] = ForgeUnavailable("down")
    done = apply_event(pw.rt, CatalogStore(pw.catalog).load(), pw.root, event,
                       factory=pw.forges)
    assert done.updated == {pw.plan: ["api"]}
    view = pw.rt.changes.forge_views(pw.plan)["api"]
    assert view.source == "webhook"
    assert {"name": "ci/test", "state": "failure", "required": False,
            "url": None} in view.document["checks"]["each"]
    other = parse_event("github", {"X-GitHub-Event": "status"}, body.replace(
        head.encode(), b"0" * 40))  # a check of no pull request of the change
    assert other is not None
    assert apply_event(pw.rt, CatalogStore(pw.catalog).load(), pw.root, other,
                       factory=pw.forges).updated == {}


def test_a_push_event_changes_no_change(pw: PullWorld) -> None:
    import json

    from coordination.catalog.file.store import CatalogStore
    from coordination.change.pulls import forge_events
    from coordination.forge.webhooks import parse_event

    body = json.dumps({"ref": "refs/heads/main", "before": "1" * 40, "after": "2" * 40,
                       "repository": {"full_name": "acme/api"}}).encode()
    event = parse_event("github", {"X-GitHub-Event": "push"}, body)
    done = forge_events.apply_event(pw.rt, CatalogStore(pw.catalog).load(), pw.root, event,  # type: ignore[arg-type]
                                    factory=pw.forges)
    assert done.updated == {}
    assert pw.rt.changes.forge_views(pw.plan) == {}


def test_a_missing_token_is_named_and_nothing_is_pushed(tmp_path: Path, redis_url: str) -> None:
    pw = PullWorld(tmp_path, ["libz", "core"])
    pw.draft()
    pw.verify()
    res = _coord(pw, "change", "publish", "PLAN-001")  # GITHUB_TOKEN unset: the real client
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "GITHUB_TOKEN" in res.stderr and "Traceback" not in res.stderr
    for r in ("libz", "core"):
        assert git(pw.repos.remote(r), "branch", "--list", "chg") == ""
    assert pw.rt.changes.read(pw.plan).pulls == {}


def test_revert_candidates_run_the_verify_todos_and_coord_verify_decides(
        pw: PullWorld) -> None:
    """Under a protection that requires coord/verify, the revert pull requests merge only
    once the change's verify todos passed on the revert candidates: coord runs them (the
    ``verify`` given: the CLI's runs `coord todo run`), posts coord/verify on each revert
    head from their records, and a failure there merges nothing."""
    base = {r: pw.repos.remote_head(r) for r in NAMES}
    pw.draft()
    pw.verify()
    pw.publisher().publish()
    landed = pw.lander().land()
    assert landed.state == "landed", landed.reason
    pw.protect(approvals=0)  # coord/verify required on every base
    given: list[dict[str, str]] = []

    def failing(cp: object) -> str | None:
        given.append(pw.verify(ok=False))
        return "TODO verify failed (exit 1)"

    res = pw.reverter(verify=failing).revert()
    assert res.state == "reverting", res.reason
    assert res.reason is not None and "failed on the revert candidates" in res.reason
    st = pw.rt.changes.read(pw.plan)
    heads = {r: st.revert_pulls[r].head for r in NAMES}
    assert given == [heads], given  # the verify todo was given the revert commits
    for r in NAMES:
        f = pw.forges.of(r)
        assert f.statuses[heads[r]]["coord/verify"].state.value == "failure"
    assert pw.repos.remote_head("libz") != base["libz"]  # nothing merged
    res = pw.reverter(verify=lambda cp: pw.verify() and None).revert()
    assert res.state == "reverted", res.reason
    for r in NAMES:
        assert pw.forges.of(r).statuses[heads[r]]["coord/verify"].state.value == "success"
        head = pw.repos.remote_head(r)
        assert (git(pw.repos.remote(r), "rev-parse", f"{head}^{{tree}}")
                == git(pw.repos.remote(r), "rev-parse", f"{base[r]}^{{tree}}"))


def test_a_landed_change_is_not_abandoned_and_nothing_changes(pw: PullWorld) -> None:
    """Abandoning leaves nothing landed: a change with a repo merged is refused before
    any pull request is closed or branch deleted (revert it first)."""
    from coordination.change.pulls.abandon import Abandoner
    from coordination.errors import ChangeNotReady

    pw.draft()
    pw.verify()
    pw.publisher().publish()
    assert pw.lander().land().state == "landed"
    branches = {r: pw.repos.remote_head(r, "chg") for r in NAMES}
    with pytest.raises(ChangeNotReady, match="coord change revert"):
        Abandoner(pw.rt, pw.cp, pw.change_forges()).abandon("not wanted")
    assert pw.status()["state"] == "landed"
    for r in NAMES:
        assert pw.repos.remote_head(r, "chg") == branches[r] is not None
        assert not [c for c in pw.forges.of(r).calls if c[0] in ("close_pr", "comment")]
