"""Landing a cross-repo change against real git: bare repos as remotes, a post-receive
hook in each recording the order of pushes (#25)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.change_repos import CHAIN, World, coord, git

pytestmark = pytest.mark.timeout(120)

#: Dependency order (each the provider of the next), not the alphabetical one.
NAMES = CHAIN


def landed_in_order(w: World, cands: dict[str, str]) -> None:
    pushes = w.repos.pushes()
    assert [p[0] for p in pushes] == NAMES, pushes
    for repo, old, new in pushes:
        assert new == cands[repo] == w.repos.remote_head(repo)


def test_a_verified_change_lands_in_dependency_order(change_world: World) -> None:
    w = change_world
    base = {r: w.repos.remote_head(r) for r in NAMES}
    cands = w.draft()
    assert w.status()["state"] == "drafted"
    given = w.verify()
    assert given == cands  # the verify todo ran against every repo's candidate
    doc = w.status()
    assert doc["state"] == "verified"
    assert all(r["verified_by"] == [w.verify_todo] and r["base_sha"] == base[n]
               for n, r in doc["repos"].items())
    out = w.lander().land()
    assert out.state == "landed" and out.landed == NAMES
    landed_in_order(w, cands)
    doc = w.status()
    assert doc["state"] == "landed"
    assert {n: r["landed"] for n, r in doc["repos"].items()} == cands
    # the user's checkouts were never touched
    for r in NAMES:
        assert git(w.repos.checkout(r), "rev-parse", "HEAD") == base[r]
        assert git(w.repos.checkout(r), "status", "--porcelain") == ""


def test_a_candidate_that_moves_after_verification_is_not_verified(change_world: World) -> None:
    w = change_world
    w.draft()
    w.verify()
    wt = Path(w.status()["repos"]["api"]["worktree"])
    (wt / "late.txt").write_text("late\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-qm", "late")
    prep = w.lander().prepare()
    assert not prep.ok
    # the verify todo ran on another set; the repo that moved is named
    assert [(b.kind, b.id) for b in prep.blockers] == [("verify", w.verify_todo), ("repo", "api")]
    assert "ran on other candidates (api " in prep.problems[0]
    assert "moved" in prep.problems[1] and "verify again" in prep.problems[1]
    assert w.status()["repos"]["api"]["state"] == "drafted"
    assert w.repos.pushes() == []


def test_a_moved_base_is_merged_into_the_branch_and_must_verify_again(change_world: World) -> None:
    w = change_world
    w.draft()
    w.verify()
    other = w.repos.push_from_elsewhere("core")
    w.repos.log.unlink()
    prep = w.lander().prepare()
    assert not prep.ok
    assert [(b.kind, b.id) for b in prep.blockers] == [("repo", "core"), ("verify", w.verify_todo)]
    assert prep.problems[0].startswith("core:") and "verify again" in prep.problems[0]
    doc = w.status()
    assert doc["repos"]["core"]["state"] == "drafted"
    assert doc["repos"]["core"]["base_sha"] == other
    w.verify()
    cands = {n: r["candidate"] for n, r in w.status()["repos"].items()}
    assert w.lander().land().state == "landed"
    assert git(w.repos.remote("core"), "merge-base", "--is-ancestor", other, "main") == ""
    landed_in_order(w, cands)


def assert_reverted(w: World, repo: str, base: str, cand: str) -> None:
    head = w.repos.remote_head(repo)
    assert git(w.repos.remote(repo), "rev-parse", f"{head}^") == cand
    assert (git(w.repos.remote(repo), "rev-parse", f"{head}^{{tree}}")
            == git(w.repos.remote(repo), "rev-parse", f"{base}^{{tree}}"))


def test_a_push_between_prepare_and_commit_is_refused_and_earlier_repos_reverted(
        change_world: World) -> None:
    w = change_world
    base, cands = w.drafted_and_verified()
    lander = w.lander()
    prep = lander.prepare()
    assert prep.ok and prep.manifest is not None
    other = w.repos.push_from_elsewhere("api")
    w.repos.log.write_text("")
    out = lander.commit(prep.manifest)
    assert out.state == "reverted"
    assert out.reason is not None and out.reason.startswith("api:") and "moved" in out.reason
    assert out.reverted == ["libz", "core"] and out.left_landed == []
    # pushed: libz, core landed; then their reverts, in reverse order
    assert [p[0] for p in w.repos.pushes()] == ["libz", "core", "core", "libz"]
    for r in ("libz", "core"):
        assert_reverted(w, r, base[r], cands[r])
    assert w.repos.remote_head("api") == other
    assert all(w.repos.remote_head(r) == base[r] for r in ("web", "app"))
    doc = w.status()
    assert doc["state"] == "reverted" and doc["reason"] == out.reason
    assert {n: r["state"] for n, r in doc["repos"].items()} == {
        "libz": "reverted", "core": "reverted", "api": "verified", "web": "verified",
        "app": "verified"}
    # landing it again: every base moved (libz and core: by the reverts, whose merge into
    # the branch is undone; api: by the other push), verified again, then it lands
    prep = w.lander().prepare()
    assert [b.id for b in prep.blockers if b.kind == "repo"] == ["libz", "core", "api"]
    assert "revert" in prep.problems[0] and "verify again" in prep.problems[0]
    w.verify()
    assert w.lander().land().state == "landed"
    for r in NAMES:
        files = git(w.repos.remote(r), "ls-tree", "--name-only", "main").split()
        assert "edit.txt" in files, (r, files)
    assert "other.txt" in git(w.repos.remote("api"), "ls-tree", "--name-only", "main").split()


def test_a_failing_land_command_stops_the_landing_and_reverts(
        tmp_path: Path, redis_url: str) -> None:
    # the land command merges by pushing itself, except in web where it fails
    script = tmp_path / "land.sh"
    script.write_text('#!/bin/sh\ntest -f "$COORD_CHANGE_MANIFEST" || exit 9\n'
                      '[ "$COORD_CHANGE_REPO" = web ] && { echo "merge blocked" >&2; exit 3; }\n'
                      'git push -q "$COORD_CHANGE_REMOTE" '
                      'HEAD:"refs/heads/$COORD_CHANGE_BASE"\n')
    script.chmod(0o755)
    w = World(tmp_path, NAMES, land="command", land_command=str(script))
    base, cands = w.drafted_and_verified()
    out = w.lander().land()
    assert out.state == "reverted"
    assert out.reason == "web: land command exited 3: merge blocked"
    assert out.reverted == ["libz", "core", "api"]
    for r in out.reverted:
        assert_reverted(w, r, base[r], cands[r])
    assert all(w.repos.remote_head(r) == base[r] for r in ("web", "app"))
    assert [p[0] for p in w.repos.pushes()] == ["libz", "core", "api", "api", "core", "libz"]


def test_a_landing_killed_between_two_pushes_finishes_once_when_run_again(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_LEASE_TTL", "1")
    from coordination.settings import get_settings

    get_settings.cache_clear()
    w = World(tmp_path, NAMES)
    cands = w.draft()
    w.verify()
    # core's post-receive hook SIGKILLs the landing process (once): after core landed,
    # before anything was recorded of it, and before api
    pidfile = tmp_path / "kill.pid"
    hook = w.repos.remote("core") / "hooks" / "post-receive"
    hook.write_text(hook.read_text() + f'[ -f {pidfile} ] && kill -9 "$(cat {pidfile})" '
                    f'&& rm -f {pidfile}\nexit 0\n')
    proc = coord(w, "change", "land", "PLAN-001", "--json")
    pidfile.write_text(str(proc.pid))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p[0] for p in w.repos.pushes()] == ["libz", "core"]
    doc = w.status()
    # its process died: interrupted (0.4: landing for ever), and what carries it on (#50)
    assert (doc["state"], doc["resume"]) == ("interrupted", "coord change land PLAN-001")
    # core was pushed but its step never recorded as landed: the rerun must see it by SHA
    assert [doc["repos"][r]["state"] for r in NAMES] == [
        "landed", "landing", "verified", "verified", "verified"]
    again = coord(w, "change", "land", "PLAN-001", "--json")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert json.loads(out)["state"] == "landed"
    landed_in_order(w, cands)  # each repo pushed exactly once, in order
    assert w.status()["state"] == "landed"


def test_one_plan_and_two_commands_from_the_command_line(tmp_path: Path) -> None:
    """`coord plan sweep` (embedded: the worker's own path) makes, commits and verifies the
    candidates in one worktree per repo; `coord change land` lands them."""
    from tests.integration.change_repos import catalog_yaml, make_repos

    repos = make_repos(tmp_path, NAMES)
    # the verify todo checks every repo's candidate as its env names it
    check = " && ".join(f'test "$(git -C "$COORD_CANDIDATE_{n.upper()}_PATH" rev-parse HEAD)" = '
                        f'"$COORD_CANDIDATE_{n.upper()}_SHA" && test -f '
                        f'"$COORD_CANDIDATE_{n.upper()}_PATH/CHANGED"' for n in NAMES)
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text(catalog_yaml(NAMES, verify_run=check))
    env = {k: v for k, v in os.environ.items() if k != "COORD_REDIS_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(cat),
                               *args], env=env, text=True, capture_output=True, timeout=90)

    swept = run("plan", "sweep", "PLAN-001", "--wait", "--json")
    assert swept.returncode == 0, swept.stderr
    st = run("change", "status", "PLAN-001", "--json")
    doc = json.loads(st.stdout)
    assert doc["state"] == "verified" and doc["order"] == NAMES
    for n in NAMES:  # the user's checkout + one worktree, reused by both todos of the repo
        assert git(repos.checkout(n), "worktree", "list", "--porcelain").count("worktree ") == 2
        assert git(repos.checkout(n), "status", "--porcelain") == ""
        assert git(repos.checkout(n), "log", "--format=%s", "-1", "chg") == f"edit {n}"
    dry = run("change", "land", "PLAN-001", "--dry-run", "--json")
    assert [r["repo"] for r in json.loads(dry.stdout)["manifest"]["repos"]] == NAMES
    assert repos.pushes() == []
    # through the merge train: queued, then verified again (`coord todo run`) and landed
    queued = run("change", "queue", "PLAN-001", "--json")
    assert json.loads(queued.stdout) == {"train": ["PLAN-001"]}
    landed = run("change", "queue", "--land", "--json")
    assert landed.returncode == 0, landed.stderr
    assert [(r["plan"], r["state"]) for r in json.loads(landed.stdout)["results"]] == [
        ("PLAN-001", "landed")]
    assert [p[0] for p in repos.pushes()] == NAMES
    for n in NAMES:
        assert repos.remote_head(n) == doc["repos"][n]["candidate"]
    again = run("change", "land", "PLAN-001", "--json")  # nothing left to land
    assert again.returncode == 1 and "already landed" in again.stderr
    bad = run("change", "status", "PLAN-999")
    assert bad.returncode == 2 and "PLAN-999" in bad.stderr


def test_a_manifest_changed_in_redis_is_refused_and_nothing_lands(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.errors import OperationFailed
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_SIGNING_KEY", "k" * 32)
    get_settings.cache_clear()
    w = World(tmp_path, NAMES[:4])
    w.draft()
    w.verify()
    prep = w.lander().prepare()
    assert prep.ok and prep.manifest is not None
    key = w.rt.keys.change(w.cp.plan)
    assert str(w.rt.redis.hget(key, "manifest_sig")).startswith("v2:")
    # someone with Redis access points a repo's landing at a commit of their own
    text = str(w.rt.redis.hget(key, "manifest"))
    evil = text.replace(prep.manifest["repos"][0]["candidate"], "0" * 40)
    w.rt.redis.hset(key, "manifest", evil)
    with pytest.raises(OperationFailed, match="manifest signature invalid"):
        w.lander().land()
    assert w.repos.pushes() == []


def test_one_worktree_per_branch_made_again_if_removed_by_hand(tmp_path: Path) -> None:
    import shutil

    from coordination.change import worktrees
    from tests.integration.change_repos import make_repos

    co = make_repos(tmp_path, ["a"]).checkout("a")
    mine = tmp_path / "mine"  # the user's own worktree, on a disk not mounted now
    git(co, "worktree", "add", "-q", str(mine), "-b", "mine")
    shutil.rmtree(mine)
    first = worktrees.ensure(co, "x", "main", "origin")
    assert first.created and worktrees.ensure(co, "x", "main", "origin") == dataclasses.replace(
        first, created=False)
    (Path(first.path) / "f").write_text("f\n")
    sha = worktrees.commit_all(first.path, "f")
    assert sha and worktrees.commit_all(first.path, "again") is None  # nothing changed
    shutil.rmtree(first.path)
    again = worktrees.ensure(co, "x", "main", "origin")
    assert again.path == first.path and git(again.path, "rev-parse", "HEAD") == sha
    assert str(mine) in git(co, "worktree", "list")  # not pruned


def test_a_repo_the_change_left_unchanged_has_nothing_to_land(change_world: World) -> None:
    from coordination.change.reading import UNCHANGED
    from coordination.change.revert import Reverter

    w = change_world
    base = {r: w.repos.remote_head(r) for r in NAMES}
    cands = w.draft(unchanged={"web"})
    assert cands["web"] == base["web"]
    w.verify()
    doc = w.status()
    assert doc["landable"] and doc["repos"]["web"]["why"] == UNCHANGED
    assert doc["repos"]["api"]["why"] is None
    prep = w.lander().prepare(dry_run=True)
    assert prep.ok and prep.manifest is not None, prep.problems
    assert [e["repo"] for e in prep.manifest["repos"]] == ["libz", "core", "api", "app"]
    assert prep.manifest["unchanged"] == ["web"]
    out = w.lander().land()
    assert out.state == "landed" and out.landed == ["libz", "core", "api", "app"]
    assert out.document()["unchanged"] == ["web"]
    assert [p[0] for p in w.repos.pushes()] == ["libz", "core", "api", "app"]
    assert w.repos.remote_head("web") == base["web"]
    assert w.status()["state"] == "landed"
    rv = Reverter(w.rt, w.cp).revert()
    assert rv.state == "reverted" and rv.reverted == ["app", "api", "core", "libz"]


def test_a_change_that_changed_nothing_anywhere_is_refused(change_world: World) -> None:
    w = change_world
    w.draft(unchanged=NAMES)
    w.verify()
    prep = w.lander().prepare()
    assert not prep.ok
    assert [(b.kind, b.id) for b in prep.blockers] == [("repo", w.plan)]
    assert "nothing to land" in prep.problems[0] and w.repos.pushes() == []


def test_land_pr_without_forges_is_refused_and_pushes_nothing(tmp_path: Path) -> None:
    """`land: pr` merges pull requests through each repo's forge (#60): a repo without
    forge: is refused when the change is read, before anything could be pushed (a
    landing never falls through to `git push` onto a base)."""
    from coordination.errors import PlanError

    with pytest.raises(PlanError, match=r"land: pr\) but repos libz, core name no forge"):
        World(tmp_path, NAMES[:2], land="pr")
    assert not (tmp_path / "pushes.log").exists()  # no push reached any remote


class Died(Exception):
    """The lander stopped where it would have written a step's event itself."""


def dying_where_a_step_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lander whose process stops wherever it would write a landing's event alone."""
    from coordination.runtime.events import EventLog

    emit = EventLog.emit
    steps = {"change.prepared", "repo.landed", "change.landed", "repo.reverted",
             "change.reverted"}

    def dies(self: EventLog, kind: str, **kw: object) -> str:
        if kind in steps:
            raise Died(kind)
        return emit(self, kind, **kw)

    monkeypatch.setattr(EventLog, "emit", dies)


def said(w: World, *kinds: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.data.get("repo")) for e in w.rt.events.read() if e.kind in kinds]


def test_each_step_of_a_landing_is_said_with_its_write(
        change_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``change.prepared``, each ``repo.landed`` and ``change.landed`` are written with
    the record they tell of: a lander that would stop where it wrote one alone lands the
    change and has said each once, in order (written after the record, the first was
    lost, and the landing stopped there)."""
    w = change_world
    w.draft()
    w.verify()
    dying_where_a_step_is_said(monkeypatch)
    try:
        out = w.lander().land()
    except Died as died:
        pytest.fail(f"the lander wrote {died} alone, after its record")
    assert out.state == "landed" and out.landed == NAMES
    assert said(w, "change.prepared", "repo.landed", "change.landed") == [
        ("change.prepared", None), *[("repo.landed", r) for r in NAMES], ("change.landed", None)]
    landed = [e.data["sha"] for e in w.rt.events.read() if e.kind == "repo.landed"]
    assert landed == [w.repos.remote_head(r) for r in NAMES]


def test_each_step_of_an_undo_is_said_with_its_write(
        change_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An undo's ``repo.reverted`` and ``change.reverted`` are written with their
    records, as a landing's steps are."""
    w = change_world
    base, cands = w.drafted_and_verified()
    lander = w.lander()
    prep = lander.prepare()
    assert prep.ok and prep.manifest is not None
    w.repos.push_from_elsewhere("api")
    dying_where_a_step_is_said(monkeypatch)
    try:
        out = lander.commit(prep.manifest)
    except Died as died:
        pytest.fail(f"the lander wrote {died} alone, after its record")
    assert out.state == "reverted" and out.reverted == ["libz", "core"]
    assert said(w, "repo.landed", "repo.reverted", "change.reverted") == [
        ("repo.landed", "libz"), ("repo.landed", "core"), ("repo.reverted", "core"),
        ("repo.reverted", "libz"), ("change.reverted", None)]
    reverted = {e.data["repo"]: e.data["sha"] for e in w.rt.events.read()
                if e.kind == "repo.reverted"}
    assert reverted == {r: w.repos.remote_head(r) for r in ("libz", "core")}
    for r in ("libz", "core"):
        assert_reverted(w, r, base[r], cands[r])


def test_an_undo_killed_after_a_revert_push_says_it_when_carried_on(
        change_world: World) -> None:
    """An undo killed after core's revert was pushed, before its step: the landing
    carried on finds the revert on the remote, records core reverted and says
    ``repo.reverted`` then (it recorded the step and said nothing: core's revert was
    never told)."""
    from coordination.change.landing import Crash

    w = change_world
    base, cands = w.drafted_and_verified()
    killed: list[str] = []

    def fault(point: str, repo: str) -> None:
        if (point, repo) == ("after-revert", "core") and not killed:
            killed.append(repo)
            raise Crash("killed after core's revert was pushed")

    lander = w.lander(fault=fault, lease_wait=5)
    prep = lander.prepare()
    assert prep.ok and prep.manifest is not None
    w.repos.push_from_elsewhere("api")
    with pytest.raises(Crash):
        lander.commit(prep.manifest)
    assert said(w, "repo.reverted") == []
    out = w.lander(lease_wait=5).land()
    assert out.state == "reverted" and out.reverted == ["libz", "core"]
    assert said(w, "repo.reverted", "change.reverted") == [
        ("repo.reverted", "core"), ("repo.reverted", "libz"), ("change.reverted", None)]
    for r in ("libz", "core"):
        assert_reverted(w, r, base[r], cands[r])
