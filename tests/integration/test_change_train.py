"""The merge train (#25): three changes queued; the middle one fails verification, leaves
the train, and the third verifies again without it, on top of the first, then lands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.change.landing import Lander
from coordination.change.model import ChangePlan, change_of
from coordination.change.reading import status_of
from coordination.change.todos import enter, leave
from coordination.change.train import run_train
from coordination.runtime.context import Runtime
from tests.integration.change_repos import git, make_repos

pytestmark = pytest.mark.timeout(120)

NAMES = ["libz", "core", "api", "web"]


def catalog(names: list[str], broken: int = 2) -> str:
    lines = ["version: 1", "repos:"]
    lines += [f"  - {{name: {n}, path: checkouts/{n}}}" for n in names]
    lines += ["coordination:", "  plans:"]
    lines += [f"    - {{id: PLAN-00{k}, title: change {k}, status: active, "
              f"change: {{branch: change-{k}}}}}" for k in (1, 2, 3)]
    lines.append("  todos:")
    tid = 0
    for k in (1, 2, 3):
        for n in names:
            tid += 1
            run = f"echo {k} > change-{k}.txt" + (" && touch BROKEN" if k == broken and n == "api" else "")
            lines.append(f"    - {{id: TODO-{tid:03d}, task: c{k} {n}, repo: {n}, plan: PLAN-00{k}, "
                         f"run: \"{run}\", commit: \"change {k} in {n}\"}}")
        tid += 1
        # every repo's candidate is checked, through the env a verify todo gets
        check = " && ".join(f'! test -f "$COORD_CANDIDATE_{n.upper()}_PATH/BROKEN"'
                            for n in names)
        lines.append(f"    - {{id: TODO-{tid:03d}, task: verify {k}, repo: web, plan: PLAN-00{k}, "
                     f"verify: true, run: '{check}'}}")
    lines.append("  dependencies:")
    lines += [f"    - {{id: DEP-00{i}, consumer: {names[i]}, provider: {names[i - 1]}}}"
              for i in range(1, len(names))]
    return "\n".join(lines) + "\n"


def run_todo(rt: Runtime, cp: ChangePlan, tid: str, root: Path) -> bool:
    """A todo through the worker's own calls (coordination.change.todos)."""
    todo = CatalogStore(root / "ecosystem.yaml").load().todo(tid)
    assert todo is not None and todo.run
    tc = cp.todo_change(todo.commit, todo.verify)
    e = enter(rt.changes, tc, todo.repo, str(root / "checkouts" / todo.repo))
    ok = subprocess.run(todo.run, shell=True, cwd=e.cwd, env={**os.environ, **e.env},
                        capture_output=True).returncode == 0
    leave(rt.changes, tc, todo.repo, tid, e, ok)
    return ok


def test_a_failing_change_leaves_the_train_and_those_behind_verify_again(
        tmp_path: Path, redis_url: str) -> None:
    repos = make_repos(tmp_path, NAMES)
    (tmp_path / "ecosystem.yaml").write_text(catalog(NAMES))
    rt = Runtime.create(catalog=tmp_path / "ecosystem.yaml")

    def resolve(plan: str) -> tuple[ChangePlan, dict[str, int]]:
        cat = CatalogStore(tmp_path / "ecosystem.yaml").load()
        return change_of(cat, plan, tmp_path), {}

    verified: list[tuple[str, dict[str, str]]] = []

    def verify(cp: ChangePlan) -> str | None:
        for tid in cp.verify_todos:
            if not run_todo(rt, cp, tid, tmp_path):
                return f"verify todo {tid} failed"
            verified.append((cp.plan, rt.changes.read(cp.plan).verifies[tid].shas))
        return None

    own: dict[str, dict[str, str]] = {}
    for k in (1, 2, 3):  # `coord plan sweep` of each: the edits, committed
        cp, _ = resolve(f"PLAN-00{k}")
        for tid in cp.todos:
            if tid not in cp.verify_todos:
                assert run_todo(rt, cp, tid, tmp_path)
        own[cp.plan] = {r: x.candidate for r, x in rt.changes.read(cp.plan).repos.items()}
    assert rt.changes.enqueue(["PLAN-001", "PLAN-002", "PLAN-003"]) == [
        "PLAN-001", "PLAN-002", "PLAN-003"]

    # a hook a todo could have written where the worktrees read it: never run by the train
    marker = tmp_path / "hook-ran"
    for n in NAMES:
        hook = Path(git(repos.checkout(n), "rev-parse", "--git-common-dir"))
        hook = (hook if hook.is_absolute() else repos.checkout(n) / hook) / "hooks" / "post-merge"
        hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
        hook.chmod(0o755)

    results = run_train(rt, resolve, verify)

    assert [(r["plan"], r["state"]) for r in results] == [
        ("PLAN-002", "failed_verification"), ("PLAN-001", "landed"), ("PLAN-003", "landed")]
    assert "TODO-010" in results[0]["reason"]
    # nothing verified twice (#50): PLAN-001, rebuilt over nothing ahead into the same
    # SHAs once PLAN-002 left, is not verified again (0.4 verified it twice)
    assert [p for p, _ in verified] == ["PLAN-001", "PLAN-003"]
    assert rt.changes.train() == []
    # PLAN-003 verified (the second time, without PLAN-002) on top of PLAN-001's candidates
    last3 = [shas for plan, shas in verified if plan == "PLAN-003"][-1]
    for n in NAMES:
        remote = repos.remote(n)
        assert git(remote, "merge-base", "--is-ancestor", own["PLAN-001"][n], last3[n]) == ""
        assert git(remote, "merge-base", "--is-ancestor", own["PLAN-003"][n], "main") == ""
        # nothing of PLAN-002 ever reached a remote
        assert subprocess.run(["git", "-C", str(remote), "cat-file", "-e", own["PLAN-002"][n]],
                              capture_output=True).returncode != 0
        files = git(remote, "ls-tree", "--name-only", "main").split()
        assert "change-1.txt" in files and "change-3.txt" in files, files
        assert "change-2.txt" not in files and "BROKEN" not in files, files
        # the train's merges are the lander's, with the trailer naming the change
        merges = git(remote, "log", "--merges", "--format=%an <%ae>%n%B%n--", "main")
        assert "Train: PLAN-001 ahead of PLAN-003" in merges, merges
        assert "Coord-Change: PLAN-003" in merges and "coord@localhost" not in merges, merges
    assert not marker.exists(), "a hook ran during the train's merges"
    # landed in dependency order: PLAN-001's four repos, then PLAN-003's
    assert [p[0] for p in repos.pushes()] == NAMES + NAMES
    # the dropped one stays failed_verification (its reason kept), its worktrees back on
    # its own commits, and nothing lands it until a verify todo passes on new candidates
    cp2, _ = resolve("PLAN-002")
    doc = status_of(rt, cp2)
    assert doc["state"] == "failed_verification" and doc["reason"] == results[0]["reason"]
    assert ("train", "PLAN-002") in [(b["kind"], b["id"]) for b in doc["blockers"]]
    assert {n: r["candidate"] for n, r in doc["repos"].items()} == own["PLAN-002"]
    prep = Lander(rt, cp2).prepare(dry_run=True)
    assert not prep.ok and ("train", "PLAN-002") in [(b.kind, b.id) for b in prep.blockers]


def test_the_first_in_line_verified_by_its_sweep_is_not_verified_again(
        tmp_path: Path, redis_url: str) -> None:
    """Nothing ahead of it, its verify todo passed on its candidates: the train lands it
    without running its verify todos again (0.4 ran them)."""
    repos = make_repos(tmp_path, NAMES)
    (tmp_path / "ecosystem.yaml").write_text(catalog(NAMES))
    rt = Runtime.create(catalog=tmp_path / "ecosystem.yaml")

    def resolve(plan: str) -> tuple[ChangePlan, dict[str, int]]:
        return change_of(CatalogStore(tmp_path / "ecosystem.yaml").load(), plan, tmp_path), {}

    cp, _ = resolve("PLAN-001")
    for tid in cp.todos:  # its sweep: the edits, then its verify todo
        assert run_todo(rt, cp, tid, tmp_path)
    asked: list[str] = []

    def verify(cp: ChangePlan) -> str | None:
        asked.append(cp.plan)
        return None

    rt.changes.enqueue(["PLAN-001"])
    results = run_train(rt, resolve, verify)
    assert [(r["plan"], r["state"]) for r in results] == [("PLAN-001", "landed")]
    assert asked == []
    assert [p[0] for p in repos.pushes()] == NAMES


def test_a_pass_started_again_verifies_none_of_those_ahead_again(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third change fails: the pass starts again, and the second, rebuilt over the
    first as before, is the same SHAs (the train's merges are dated as the change's own
    commits, not now): verified already, not again (0.4 verified it twice)."""
    make_repos(tmp_path, NAMES)
    (tmp_path / "ecosystem.yaml").write_text(catalog(NAMES, broken=3))
    rt = Runtime.create(catalog=tmp_path / "ecosystem.yaml")

    def resolve(plan: str) -> tuple[ChangePlan, dict[str, int]]:
        return change_of(CatalogStore(tmp_path / "ecosystem.yaml").load(), plan, tmp_path), {}

    for k in (1, 2, 3):
        cp, _ = resolve(f"PLAN-00{k}")
        for tid in cp.todos:
            if tid not in cp.verify_todos:
                assert run_todo(rt, cp, tid, tmp_path)
    asked: list[str] = []

    def verify(cp: ChangePlan) -> str | None:
        asked.append(cp.plan)
        for tid in cp.verify_todos:
            if not run_todo(rt, cp, tid, tmp_path):
                # the clock moves on before the pass starts again (as it would: a real
                # verification takes minutes)
                monkeypatch.setenv("GIT_COMMITTER_DATE", "2001-01-01T00:00:00+0000")
                monkeypatch.setenv("GIT_AUTHOR_DATE", "2001-01-01T00:00:00+0000")
                return f"verify todo {tid} failed"
        return None

    rt.changes.enqueue(["PLAN-001", "PLAN-002", "PLAN-003"])
    results = run_train(rt, resolve, verify)
    assert [(r["plan"], r["state"]) for r in results] == [
        ("PLAN-003", "failed_verification"), ("PLAN-001", "landed"), ("PLAN-002", "landed")]
    assert asked == ["PLAN-001", "PLAN-002", "PLAN-003"]
