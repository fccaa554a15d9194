"""A template's id where a todo id is taken: `sweep resume --only TODO-010` is every
instance of it in the sweep, `todo run TODO-010` says it is a template and how to run
it, `todo list --repo api` lists api's instance, `todo show` of an instance shows the
whole environment it runs with; and fleet-size lists (a resume's kept todos, a worker's
repos) name ten and count the rest."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

from coordination.cli.context import Context
from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog

pytestmark = pytest.mark.timeout(120)

REPOS = tuple(f"r{i:02d}" for i in range(12))


def fleet(tmp_path: Path) -> Path:
    """TODO-010 over twelve repos (fails where a `fail` file is), TODO-020 after it."""
    cat = write_catalog(tmp_path, [
        {"id": "TODO-010", "for_each": "r*", "run": "test ! -e fail"},
        {"id": "TODO-020", "repo": "r00", "run": "true", "blocked_by": ["TODO-010"]},
    ], repos=REPOS)
    return cat


def test_resume_only_a_template_reruns_its_instances(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    cat = fleet(tmp_path)
    (tmp_path / "repos" / "r03" / "fail").write_text("")
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        assert svc.wait(sid, timeout=60)["status"] == "failed"
        plan = svc.resume(sid, only=["TODO-010"], dry_run=True)
        assert plan["rerun"] == ["TODO-010[r03]", "TODO-020"]
        assert plan["dependents"] == ["TODO-020"]  # not asked for: after what was
        with mock.patch("coordination.cli.sweep.get_runtime", lambda _file, **_kw: rt):
            from coordination.cli.sweep import sweep

            res = CliRunner().invoke(sweep, ["resume", sid, "--dry-run", "--only", "TODO-010"],
                                     obj=Context(cat), terminal_width=400)
        assert res.exit_code == 0, (res.output, res.exception)
        kept = next(ln for ln in res.output.splitlines() if ln.startswith("kept as they are"))
        # eleven instances succeeded: ten named, one counted (--json has every one)
        assert kept.endswith("TODO-010[r10] and 1 more"), kept
        assert "TODO-010[r11]" not in kept
        (tmp_path / "repos" / "r03" / "fail").unlink()
        out = svc.resume(sid, only=["TODO-010"])
        assert out["rerun"] == ["TODO-010[r03]", "TODO-020"]
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    with pytest.raises(Exception, match="TODO-099"):
        svc.resume(sid, only=["TODO-099"], dry_run=True)


def test_todo_run_of_a_template_says_how_to_run_it(rt: Runtime, tmp_path: Path) -> None:
    svc = SweepService(rt, fleet(tmp_path))
    with pytest.raises(UsageError) as err:
        svc.todo_spec("TODO-010")
    assert "TODO-010 is a template (for_each), not one todo: its 12 instance(s) are " \
           "TODO-010[r00]" in err.value.message
    assert "and 2 more" in err.value.message
    assert "coord todo run 'TODO-010[r00]'" in str(err.value.hint)
    assert f"coord plan sweep {PLAN}" in str(err.value.hint)
    assert "--only TODO-010" in str(err.value.hint)


def catalog(tmp_path: Path) -> Path:
    for r in ("api", "web"):
        (tmp_path / r).mkdir()
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump({
        "version": 1,
        "repos": [{"name": "api", "path": "api", "tags": ["py", "svc"]},
                  {"name": "web", "path": "web", "tags": ["py"]}],
        "coordination": {"todos": [
            {"id": "TODO-001", "task": "plain", "repo": "api", "run": "true"},
            {"id": "TODO-010", "task": "up", "for_each": "tag:py", "run": "make up",
             "env": {"X": "1"}, "status": "failed", "instances": {"api": "failed"}}]},
    }, sort_keys=False))
    return eco


def test_todo_list_of_a_repo_lists_its_instances(tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    r = coord(eco, "todo", "list", "--repo", "api", "--json")
    assert r.returncode == 0, r.stderr
    got = [(t["id"], t["status"], t["repo"]) for t in json.loads(r.stdout)]
    assert got == [("TODO-001", "pending", "api"), ("TODO-010[api]", "failed", "api")]
    r = coord(eco, "todo", "list", "--repo", "web", "--status", "pending", "--json")
    assert [t["id"] for t in json.loads(r.stdout)] == ["TODO-010[web]"]
    r = coord(eco, "todo", "list", "--repo", "web")
    assert "TODO-010[web]" in r.stdout, r.stdout  # as it is, not eaten as markup
    r = coord(eco, "todo", "list", "--json")  # no repo asked: the template, once
    assert [t["id"] for t in json.loads(r.stdout)] == ["TODO-001", "TODO-010"]


def test_todo_show_of_an_instance_shows_the_environment_it_runs_with(tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    r = coord(eco, "todo", "show", "TODO-010[api]", "--json")
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)["env"]
    assert env == {"COORD_REPO": "api", "X": "1", "COORD_REPO_PATH": str(tmp_path / "api"),
                   "COORD_REPO_TAGS": "py,svc"}
    r = coord(eco, "todo", "show", "TODO-010[api]")
    assert "COORD_REPO=api" in r.stdout and "COORD_REPO_TAGS=py,svc" in r.stdout, r.stdout


def test_workers_name_ten_repos_and_count_the_rest(rt: Runtime) -> None:
    from coordination.cli.workers import workers
    from coordination.runtime.workers import WorkerRecord

    repos = [f"svc-{i:05d}" for i in range(200)]
    rt.workers.beat(WorkerRecord(name="w1", host="h", pid=1, repos=repos, beat=60))
    with mock.patch("coordination.cli.workers._runtime", lambda: rt):
        res = CliRunner().invoke(workers, [], terminal_width=400)
        assert res.exit_code == 0, (res.output, res.exception)
        assert "svc-00009 and 190 more" in res.output and "svc-00010" not in res.output
        res = CliRunner().invoke(workers, ["--json"])
    assert json.loads(res.output)[0]["repos"] == repos
