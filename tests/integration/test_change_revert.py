"""`coord change revert` against real git (bare remotes whose post-receive hook logs the
order of pushes) and real Redis; who coord's own commits are by; git hooks off during a
landing (#38 items 6, 9 and the git surfaces)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.integration.change_repos import CHAIN, World, coord, git

pytestmark = pytest.mark.timeout(120)

#: Dependency order (each the provider of the next), not the alphabetical one.
NAMES = CHAIN
PLAN = "PLAN-001"


def landed(w: World) -> tuple[dict[str, str], dict[str, str]]:
    """Draft, verify and land the change: (bases, candidates); the push log emptied."""
    base, cands = w.drafted_and_verified()
    assert w.lander().land().state == "landed"
    w.repos.log.write_text("")
    return base, cands


def tree(w: World, repo: str, rev: str) -> str:
    return git(w.repos.remote(repo), "rev-parse", f"{rev}^{{tree}}")


def files(w: World, repo: str) -> list[str]:
    return sorted(git(w.repos.remote(repo), "ls-tree", "--name-only", "main").split())


def run(w: World, *args: str) -> tuple[int, str, str]:
    p = coord(w, *args)
    out, err = p.communicate(timeout=90)
    return p.returncode, out, err


def test_a_landed_change_is_reverted_consumers_first_by_the_lander(change_world: World) -> None:
    w = change_world
    base, cands = landed(w)
    code, out, err = run(w, "change", "revert", PLAN, "--dry-run", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [(r["repo"], r["action"], r["landed"]) for r in doc["repos"]] == [
        (r, "revert", cands[r]) for r in reversed(NAMES)]
    assert w.repos.pushes() == []  # a dry run pushes nothing
    code, out, err = run(w, "change", "revert", PLAN, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["state"] == "reverted" and doc["reverted"] == list(reversed(NAMES))
    pushes = w.repos.pushes()
    assert [p[0] for p in pushes] == list(reversed(NAMES))  # consumers first, once each
    for repo, old, new in pushes:
        assert old == cands[repo] and new == w.repos.remote_head(repo)
        assert tree(w, repo, "main") == tree(w, repo, base[repo])  # the base's tree again
        assert git(w.repos.remote(repo), "rev-parse", "main^") == cands[repo]
        # by the lander (git's identity in the checkout: t <t@t>), with the trailer
        assert git(w.repos.remote(repo), "log", "-1", "--format=%an <%ae>|%cn <%ce>",
                   "main") == "t <t@t>|t <t@t>"
        assert git(w.repos.remote(repo), "log", "-1", "--format=%(trailers:key=Coord-Change,"
                   "valueonly)", "main") == PLAN
    st = w.status()
    assert st["state"] == "reverted"
    assert {n: r["state"] for n, r in st["repos"].items()} == dict.fromkeys(NAMES, "reverted")
    kinds = [e.kind for e in w.rt.events.read()
             if e.data.get("plan") == PLAN and e.kind in ("repo.reverted", "change.reverted")]
    assert kinds == ["repo.reverted"] * len(NAMES) + ["change.reverted"]
    from coordination.catalog.audit.log import log_path, read

    entries = [e for e in read(log_path(w.catalog)) if e["op"] == "change.revert"]
    assert len(entries) == 1 and entries[0]["ids"] == [PLAN]
    assert entries[0]["decision"]["state"] == "reverted"
    # and in the change's history: `coord history search PLAN` finds the revert
    code, out, err = run(w, "history", "search", PLAN, "--kind", "edit", "--json")
    assert code == 0, err
    found = [r for r in json.loads(out) if r.get("op") == "change.revert"]
    assert len(found) == 1 and PLAN in found[0]["ids"], out
    # nothing left to revert: refused, nothing pushed
    code, out, err = run(w, "change", "revert", PLAN)
    assert code == 1 and "not landed" in err and "reverted" in err
    assert len(w.repos.pushes()) == len(NAMES)


def test_a_revert_after_others_pushed_takes_out_only_the_change(change_world: World) -> None:
    w = change_world
    base, cands = landed(w)
    other = w.repos.push_from_elsewhere("core")
    # and in web someone took the change out by hand already
    mine = w.root / "others" / "web"
    git(w.root, "clone", "--quiet", str(w.repos.remote("web")), str(mine))
    git(mine, "revert", "--no-edit", "HEAD")
    git(mine, "push", "-q", "origin", "HEAD:main")
    by_hand = w.repos.remote_head("web")
    w.repos.log.write_text("")
    code, out, err = run(w, "change", "revert", PLAN, "--dry-run", "--json")
    assert code == 0, err
    core = next(r for r in json.loads(out)["repos"] if r["repo"] == "core")
    assert core["others_pushed"] and core["head"] == other
    out_ = w.status()
    assert out_["state"] == "landed"
    from coordination.change.revert import Reverter

    result = Reverter(w.rt, w.cp).revert()
    assert result.state == "reverted", result.reason
    assert [p[0] for p in w.repos.pushes()] == [r for r in reversed(NAMES) if r != "web"]
    assert w.repos.remote_head("web") == by_hand  # no empty revert pushed over it
    assert w.status()["repos"]["web"]["state"] == "reverted"
    # core: the other push kept, the change's file gone, the revert over the other push
    assert git(w.repos.remote("core"), "rev-parse", "main^") == other
    assert files(w, "core") == ["README", "other.txt"]
    for r in NAMES:
        if r not in ("core", "web"):
            assert tree(w, r, "main") == tree(w, r, base[r])
    # landing it again: each base moved (by the revert, undone in the branch), verified
    # again, then it lands with the other push kept
    prep = w.lander().prepare()
    # each repo's base merged in (verify again), so the verify todo ran on other candidates
    by = {p.split(":")[0]: p for p in prep.problems}
    assert list(by) == [*NAMES, w.verify_todo], prep.problems
    assert all("verify again" in by[r] for r in NAMES), prep.problems
    assert "ran on other candidates" in by[w.verify_todo], prep.problems
    w.verify()
    assert w.lander().land().state == "landed"
    for r in NAMES:
        assert "edit.txt" in files(w, r), r
    assert "other.txt" in files(w, "core")


def test_a_revert_that_conflicts_with_a_later_push_is_refused_naming_it(change_world: World) -> None:
    w = change_world
    landed(w)
    # someone else edits the change's own file in api: taking the change out conflicts
    other = w.root / "others" / "api"
    git(w.root, "clone", "--quiet", str(w.repos.remote("api")), str(other))
    (other / "edit.txt").write_text("edited again by someone else\n")
    git(other, "commit", "-qam", "theirs")
    git(other, "push", "-q", "origin", "HEAD:main")
    w.repos.log.write_text("")
    code, out, err = run(w, "change", "revert", PLAN, "--dry-run")
    assert code == 1
    assert "api: the revert does not apply" in err and "edit.txt" in err
    assert w.repos.pushes() == []
    code, out, err = run(w, "change", "revert", PLAN)
    assert code == 1 and "api: the revert does not apply" in err and "edit.txt" in err
    # all or none: app and web (reverted before api) landed again, in landing order
    assert [p[0] for p in w.repos.pushes()] == ["app", "web", "web", "app"]
    for r in ("web", "app"):
        assert "edit.txt" in files(w, r)
    st = w.status()
    assert st["state"] == "landed" and "api" in str(st["reason"])
    # and a revert after the conflict is settled carries on over the re-landing
    git(other, "rm", "-q", "edit.txt")
    git(other, "commit", "-qm", "theirs gone")
    git(other, "push", "-q", "origin", "HEAD:main")
    code, out, err = run(w, "change", "revert", PLAN, "--json")
    assert code == 0, err
    for r in NAMES:
        assert "edit.txt" not in files(w, r), r


def reject_hook(w: World, repo: str, flag: Path) -> None:
    """``repo``'s remote refuses every push while ``flag`` exists."""
    hook = w.repos.remote(repo) / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\n[ -f {flag} ] && {{ echo 'protected branch' >&2; exit 1; }}\n"
                    "exit 0\n")
    hook.chmod(0o755)


def test_a_refused_revert_push_lands_again_what_was_reverted(change_world: World) -> None:
    w = change_world
    base, cands = landed(w)
    flag = w.root / "refuse"
    flag.write_text("")
    reject_hook(w, "api", flag)
    from coordination.change.revert import Reverter

    out = Reverter(w.rt, w.cp).revert()
    assert out.state == "landed"
    assert out.reason is not None and "api: revert refused" in out.reason
    assert "protected branch" in out.reason
    assert out.relanded == ["web", "app"]
    # app, web reverted; api refused (nothing pushed); then web, app landed again
    assert [p[0] for p in w.repos.pushes()] == ["app", "web", "web", "app"]
    for r in NAMES:
        assert tree(w, r, "main") == tree(w, r, cands[r]), r  # every repo as landed
    st = w.status()
    assert st["state"] == "landed" and {r["state"] for r in st["repos"].values()} == {"landed"}
    flag.unlink()
    w.repos.log.write_text("")
    out = Reverter(w.rt, w.cp).revert()
    assert out.state == "reverted"
    assert [p[0] for p in w.repos.pushes()] == list(reversed(NAMES))
    for r in NAMES:
        assert tree(w, r, "main") == tree(w, r, base[r]), r


def test_when_landing_again_is_refused_too_the_change_is_revert_failed(change_world: World) -> None:
    w = change_world
    landed(w)
    flag, later = w.root / "refuse", w.root / "refuse-later"
    flag.write_text("")
    reject_hook(w, "api", flag)
    # web accepts its revert, then refuses the push landing it again
    hook = w.repos.remote("web") / "hooks" / "post-receive"
    hook.write_text(hook.read_text() + f"touch {later}\n")
    reject_hook(w, "web", later)
    from coordination.change.revert import Reverter

    out = Reverter(w.rt, w.cp).revert()
    assert out.state == "revert_failed"
    assert out.states == {"libz": "landed", "core": "landed", "api": "landed",
                          "web": "reverted", "app": "landed"}
    assert out.reason is not None
    assert "api: revert refused" in out.reason and "web: landing it again was refused" in out.reason
    assert "web reverted" in out.reason and "app landed" in out.reason
    st = w.status()
    assert st["state"] == "revert_failed" and st["repos"]["web"]["state"] == "reverted"


def test_a_revert_killed_between_two_pushes_finishes_once_when_run_again(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_LEASE_TTL", "1")
    from coordination.settings import get_settings

    get_settings.cache_clear()
    w = World(tmp_path, NAMES)
    base, cands = landed(w)
    # api's post-receive hook SIGKILLs the revert (once): after api's revert was pushed,
    # before it was recorded, before core's
    pidfile = tmp_path / "kill.pid"
    hook = w.repos.remote("api") / "hooks" / "post-receive"
    hook.write_text(hook.read_text() + f'[ -f {pidfile} ] && kill -9 "$(cat {pidfile})" '
                    f'&& rm -f {pidfile}\nexit 0\n')
    proc = coord(w, "change", "revert", PLAN, "--json")
    pidfile.write_text(str(proc.pid))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p[0] for p in w.repos.pushes()] == ["app", "web", "api"]
    st = w.status()
    # its process died half-way: revert_interrupted, not landed (0.4), and what carries
    # it on (#50)
    assert (st["state"], st["resume"]) == ("revert_interrupted", f"coord change revert {PLAN}")
    assert [st["repos"][r]["state"] for r in reversed(NAMES)] == [
        "reverted", "reverted", "landing", "landed", "landed"]  # api: its step "reverting"
    code, out, err = run(w, "change", "revert", PLAN, "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "reverted"
    pushes = w.repos.pushes()
    assert [p[0] for p in pushes] == list(reversed(NAMES))  # api's revert not pushed twice
    for repo, old, new in pushes:
        assert old == cands[repo] and tree(w, repo, new) == tree(w, repo, base[repo])


def test_a_landing_undo_and_a_merged_base_are_by_the_lander_with_the_trailer(
        change_world: World) -> None:
    w = change_world
    w.draft()
    w.verify()
    other = w.repos.push_from_elsewhere("core")
    prep = w.lander().prepare()  # core's moved base merged into the branch
    assert not prep.ok
    wt = w.status()["repos"]["core"]["worktree"]
    assert git(wt, "log", "-1", "--format=%P", "HEAD").split()[1] == other
    assert git(wt, "log", "-1", "--format=%an <%ae>", "HEAD") == "t <t@t>"
    assert git(wt, "log", "-1", "--format=%(trailers:key=Coord-Change,valueonly)",
               "HEAD") == PLAN
    w.verify()
    lander = w.lander()
    prep = lander.prepare()
    assert prep.ok and prep.manifest is not None
    w.repos.push_from_elsewhere("api", "late.txt")
    out = lander.commit(prep.manifest)
    assert out.state == "reverted" and out.reverted == ["libz", "core"]
    for r in out.reverted:  # the undo's reverts: by the lander, with the trailer
        assert git(w.repos.remote(r), "log", "-1", "--format=%an <%ae>|%cn <%ce>",
                   "main") == "t <t@t>|t <t@t>"
        assert git(w.repos.remote(r), "log", "-1",
                   "--format=%(trailers:key=Coord-Change,valueonly)", "main") == PLAN


def with_land_hooks(w: World) -> World:
    text = w.catalog.read_text()
    for n in w.names:
        text = text.replace(f"path: checkouts/{n}}}", f"path: checkouts/{n}, land_hooks: true}}")
    w.catalog.write_text(text)
    from coordination.catalog.file.store import CatalogStore
    from coordination.change.model import change_of

    w.cp = change_of(CatalogStore(w.catalog).load(), w.plan, w.root)
    assert all(t.land_hooks for t in w.cp.targets.values())
    return w


@pytest.mark.parametrize("land_hooks", [False, True])
def test_a_hook_a_todo_wrote_runs_during_landing_only_with_land_hooks(
        change_world: World, land_hooks: bool) -> None:
    w = with_land_hooks(change_world) if land_hooks else change_world
    w.draft()
    # a todo of app writes a pre-push hook into its repo, and one into a hooks
    # directory it points core.hooksPath at: both run with the lander's credentials
    ran = w.root / "hook-ran"
    body = f"#!/bin/sh\necho \"$0\" >> {ran}\nexit 0\n"
    wt = Path(w.status()["repos"]["app"]["worktree"])
    common = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    (common / "hooks").mkdir(exist_ok=True)
    mine = wt.parent / "evil-hooks"
    mine.mkdir()
    for d in (common / "hooks", mine):
        (d / "pre-push").write_text(body)
        (d / "pre-push").chmod(0o755)
    w.verify()
    assert w.lander().land().state == "landed"
    if land_hooks:
        assert ran.read_text().count("pre-push") == 1  # the repo's own hooks, as git runs them
    else:
        assert not ran.exists()
    git(wt, "config", "core.hooksPath", str(mine))
    ran.unlink(missing_ok=True)
    from coordination.change.revert import Reverter

    assert Reverter(w.rt, w.cp).revert().state == "reverted"
    if land_hooks:
        assert str(mine) in ran.read_text()
    else:
        assert not ran.exists()


def test_a_land_command_change_is_reverted_by_its_revert_command(
        tmp_path: Path, redis_url: str) -> None:
    # land: the command pushes the candidate; revert: the command makes its own revert
    # commit (another SHA than coord's, the same tree) and pushes it, as a forge would
    land = tmp_path / "land.sh"
    land.write_text('#!/bin/sh\ngit push -q "$COORD_CHANGE_REMOTE" '
                    'HEAD:"refs/heads/$COORD_CHANGE_BASE"\n')
    rev = tmp_path / "revert.sh"
    rev.write_text('#!/bin/sh\nset -e\ntest -f "$COORD_CHANGE_MANIFEST"\n'
                   'echo "$COORD_CHANGE_REPO" >> "$(dirname "$0")/reverts.log"\n'
                   'c=$(git -c user.name=forge -c user.email=f@f commit-tree '
                   '"$COORD_CHANGE_REVERT_SHA^{tree}" -p "$COORD_CHANGE_HEAD_SHA" -m forge)\n'
                   'git push -q "$COORD_CHANGE_REMOTE" "$c:refs/heads/$COORD_CHANGE_BASE"\n')
    for f in (land, rev):
        f.chmod(0o755)
    names = NAMES[:3]
    w = World(tmp_path, names, land="command", land_command=str(land))
    text = w.catalog.read_text()
    for n in names:
        text = text.replace(f"path: checkouts/{n},", f"path: checkouts/{n}, "
                            f"revert_command: {json.dumps(str(rev))},")
    w.catalog.write_text(text)
    from coordination.catalog.file.store import CatalogStore
    from coordination.change.model import change_of
    from coordination.change.revert import Reverter

    w.cp = change_of(CatalogStore(w.catalog).load(), w.plan, w.root)
    base, cands = landed(w)
    out = Reverter(w.rt, w.cp).revert()
    assert out.state == "reverted", out.reason
    assert (tmp_path / "reverts.log").read_text().split() == list(reversed(names))
    for r in names:
        assert tree(w, r, "main") == tree(w, r, base[r])
        assert git(w.repos.remote(r), "log", "-1", "--format=%an", "main") == "forge"
    # a resumed revert (its step still "reverting") knows the command's own commit
    # by its tree over the head it went over: the command does not run again
    from coordination.status import StepState

    st = w.rt.changes.read(w.plan)
    lease = w.rt.changes.take_lease("api", 1)
    assert lease is not None
    step = st.steps["api"]
    assert step.over is not None
    coords = git(w.repos.checkout("api"), "commit-tree", f"{step.revert}^{{tree}}", "-p",
                 step.over, "-m", "coord's own revert, never pushed")
    # (as a revert killed after its push left it: the step's own door moves it no
    # further back than reverted, so the record is put back as the killed one wrote it)
    w.rt.redis.hset(w.rt.keys.change(w.plan), "step:api",
                    step.but(state=StepState.reverting, revert=coords).to_json())
    w.rt.leases.release(lease)
    w.rt.changes.end_landing(w.plan, "landed", None)
    assert Reverter(w.rt, w.cp).revert().state == "reverted"
    assert (tmp_path / "reverts.log").read_text().split() == list(reversed(names))


def test_a_land_command_change_without_a_revert_command_is_refused(
        tmp_path: Path, redis_url: str) -> None:
    land = tmp_path / "land.sh"
    land.write_text('#!/bin/sh\ngit push -q "$COORD_CHANGE_REMOTE" '
                    'HEAD:"refs/heads/$COORD_CHANGE_BASE"\n')
    land.chmod(0o755)
    w = World(tmp_path, NAMES[:2], land="command", land_command=str(land))
    landed(w)
    code, out, err = run(w, "change", "revert", PLAN, "--dry-run")
    assert code == 1
    assert "core: lands by command but has no revert_command" in err
    assert "libz: lands by command but has no revert_command" in err
    code, out, err = run(w, "change", "revert", PLAN)
    assert code == 1 and "core: lands by command but has no revert_command" in err
    assert w.repos.pushes() == [] and w.status()["state"] == "landed"
