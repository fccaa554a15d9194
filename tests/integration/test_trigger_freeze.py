"""`coord trigger push` and `coord freeze` from the command line, on a real redis-server
with real `coord worker` processes; `sweep pause|cancel --all`; a freeze held across
processes in embedded mode too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import git
from tests.integration.helpers import ROOT, Cluster
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# web -> api -> core
CATALOG = """\
version: 1
repos:
  - {name: core, path: repos/core, tags: [python]}
  - {name: api, path: repos/api, tags: [python]}
  - {name: web, path: repos/web, tags: [js]}
coordination:
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
    - {id: DEP-002, consumer: api, provider: core}
  plans:
    - {id: PLAN-001, title: on python pushes, on: {push: {repos: "tag:python", branch: main}}}
    - {id: PLAN-002, title: what depends on core, on: {push: {repos: "...core"}}}
  todos:
    - {id: TODO-001, task: test api, repo: api, plan: PLAN-001, run: "echo ok"}
    - {id: TODO-002, task: test web, repo: web, plan: PLAN-002, run: "echo ok"}
"""
SHA = "3f2c1e9aa0"


def fleet(root: Path) -> Path:
    for r in ("core", "api", "web"):
        (root / "repos" / r).mkdir(parents=True, exist_ok=True)
    eco = root / "ecosystem.yaml"
    eco.write_text(CATALOG)
    return eco


def test_a_push_starts_what_its_triggers_select(cluster: Cluster) -> None:
    c = cluster
    fleet(c.root)
    c.start_workers(["api", "web"])
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", SHA, "--wait")
    # tag:python selects core, but a push runs the plan's todos of core alone: PLAN-001
    # has none there
    assert [s["plan"] for s in doc["started"]] == ["PLAN-002"]
    assert {"plan": "PLAN-001", "why": "it has no todo in core (a push runs the plan's "
            "todos of the pushed repo)"} in doc["unmatched"]
    assert [e["status"] for e in doc["ended"]] == ["succeeded"]
    st = c.cli_json("sweep", "status", doc["started"][0]["sweep_id"])
    assert st["trigger"] == {"kind": "push", "repo": "core", "branch": "main", "sha": SHA,
                             "repos": ["core", "api", "web"]}
    starts = [e for e in c.cli_json("audit") if e["op"] == "sweep.start"]
    assert [e["ids"][1] for e in starts] == ["PLAN-002"]
    # web is selected by ...core only; a branch no trigger is for starts nothing (exit 0)
    assert [s["plan"] for s in c.cli_json("trigger", "push", "--repo", "web",
                                          "--ref", SHA)["started"]] == ["PLAN-002"]
    res = c.cli("trigger", "push", "--repo", "api", "--ref", SHA, "--branch", "feature")
    assert res.returncode == 0, res.stderr
    assert "nothing started" in res.stdout and "its trigger is for branch main" in res.stdout
    res = c.cli("trigger", "push", "--repo", "nope", "--ref", SHA)
    assert res.returncode == 2 and "unknown repo 'nope'" in res.stderr
    res = c.cli("trigger", "push", "--repo", "api", "--ref", "main")
    assert res.returncode == 2 and "is not a commit's SHA" in res.stderr
    assert len(c.cli_json("sweep", "list")) == 2


def test_freeze_refuses_starts_and_pause_all_stops_what_runs(cluster: Cluster) -> None:
    c = cluster
    fleet(c.root)
    first = c.cli_json("plan", "sweep", "PLAN-001")["sweep_id"]  # no worker: stays queued
    second = c.cli_json("plan", "sweep", "PLAN-002")["sweep_id"]
    res = c.cli("freeze", "--reason", "incident 4711")
    assert res.returncode == 0 and "frozen" in res.stdout, res.stderr
    for argv in (("plan", "sweep", "PLAN-001"), ("todo", "run", "TODO-001"),
                 ("trigger", "push", "--repo", "api", "--ref", SHA),
                 ("trigger", "push", "--repo", "api", "--ref", SHA, "--dry-run")):
        res = c.cli(*argv)
        out = res.stdout + res.stderr
        assert res.returncode == 1, (argv, out)
        assert "the fleet is frozen" in out and "incident 4711" in out, out
        assert "coord unfreeze" in out, out
    doctor = json.loads(c.cli("doctor", "--json").stdout)  # (exit 1: no workers, no AOF)
    assert any(f["check"] == "freeze" and f["level"] == "warning" and "incident 4711"
               in f["message"] for f in doctor["findings"])
    paused = c.cli_json("sweep", "pause", "--all")
    assert sorted(p["sweep_id"] for p in paused["sweeps"]) == sorted([first, second])
    assert all(p["changed"] for p in paused["sweeps"])
    res = c.cli("sweep", "unpause", first)
    assert res.returncode == 1 and "refusing to unpause" in res.stderr
    res = c.cli("sweep", "pause")
    assert res.returncode == 2 and "give a sweep id or --all" in res.stderr
    cancelled = c.cli_json("sweep", "cancel", "--all")
    assert sorted(p["sweep_id"] for p in cancelled["sweeps"]) == sorted([first, second])
    assert {c.cli_json("sweep", "status", s)["status"] for s in (first, second)} == {"cancelled"}
    assert len(c.cli_json("sweep", "list")) == 2  # nothing started while frozen
    assert c.cli_json("unfreeze")["changed"] is True
    c.start_worker("api")
    again = c.cli_json("plan", "sweep", "PLAN-001", "--wait")
    assert again["status"] == "succeeded"
    ops = [e["op"] for e in c.cli_json("audit") if e["op"].startswith("fleet.")]
    assert ops == ["fleet.freeze", "fleet.unfreeze"]


def test_embedded_a_freeze_holds_across_processes(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))

    def coord(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                               str(eco), *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)

    assert coord("freeze", "--reason", "embedded stop").returncode == 0
    res = coord("plan", "sweep", "PLAN-001")
    assert res.returncode == 1 and "frozen by tester" in res.stderr, res.stderr
    assert coord("unfreeze").returncode == 0
    res = coord("plan", "sweep", "PLAN-001")
    assert res.returncode == 0, res.stderr


def test_a_forge_push_webhook_starts_what_its_triggers_select_a_bad_signature_nothing(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forge's push webhook takes `coord trigger push`'s path: the repo whose
    ``forge:`` names the event's project, its triggers' plans started, a freeze refusing
    them; a delivery whose signature does not verify starts nothing."""
    from starlette.testclient import TestClient

    from coordination.forge.webhooks import sign
    from coordination.runtime.context import get_runtime
    from coordination.ui.hooks import Hooks

    c = cluster
    eco = fleet(c.root)
    eco.write_text(CATALOG.replace(
        "{name: core, path: repos/core, tags: [python]}",
        "{name: core, path: repos/core, tags: [python], forge: {kind: github, project: acme/core}}"))
    monkeypatch.setenv("COORD_REDIS_URL", c.redis_url)
    for k, v in c.env.items():
        if k.startswith("COORD_"):
            monkeypatch.setenv(k, v)
    sha = "3f2c1e9aa0" + "0" * 30
    body = json.dumps({"ref": "refs/heads/main", "before": "1" * 40, "after": sha,
                       "repository": {"full_name": "acme/core"}}).encode()
    client = TestClient(Hooks(get_runtime(eco), eco, env={"COORD_FORGE_WEBHOOK_SECRET": "s3"}).app())
    head = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    bad = client.post("/hooks/github", content=body, headers={**head, **sign("github", body, "no")})
    assert bad.status_code == 401
    assert c.cli_json("sweep", "list") == []
    ok = client.post("/hooks/github", content=body, headers={**head, **sign("github", body, "s3")})
    assert ok.status_code == 200, ok.text
    doc = ok.json()
    assert doc["repos"] == ["core"]
    assert [s["plan"] for s in doc["started"]] == ["PLAN-002"]  # PLAN-001: none in core
    st = c.cli_json("sweep", "status", doc["started"][0]["sweep_id"])
    assert st["trigger"] == {"kind": "push", "repo": "core", "branch": "main", "sha": sha,
                             "repos": ["core", "api", "web"]}
    assert c.cli("freeze", "--reason", "incident").returncode == 0
    frozen = client.post("/hooks/github", content=body,
                         headers={**head, **sign("github", body, "s3")}).json()
    assert [s["sweep_id"] for s in frozen["started"]] == [None]
    assert all("frozen" in s["error"] for s in frozen["started"]), frozen
    assert len(c.cli_json("sweep", "list")) == 1


# web -> api -> core; each todo writes its id into ran.log beside the catalog
SCOPED = """\
version: 1
repos:
  - {name: core, path: repos/core, tags: [python]}
  - {name: api, path: repos/api, tags: [python]}
  - {name: web, path: repos/web, tags: [js]}
coordination:
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
    - {id: DEP-002, consumer: api, provider: core}
  plans:
    - {id: PLAN-010, title: api and what depends on it, on: {push: {repos: "...api"}}}
    - {id: PLAN-011, title: python repos, on: {push: {repos: "tag:python"}}}
  todos:
    - {id: TODO-010, task: core, repo: core, plan: PLAN-010, run: "echo TODO-010 >> ../../ran.log"}
    - {id: TODO-011, task: api, repo: api, plan: PLAN-010, blocked_by: [TODO-010],
       run: "echo TODO-011 >> ../../ran.log"}
    - {id: TODO-012, task: web, repo: web, plan: PLAN-010, blocked_by: [TODO-011],
       run: "echo TODO-012 >> ../../ran.log"}
    - {id: TODO-020, task: core, repo: core, plan: PLAN-011, run: "echo TODO-020 >> ../../ran.log"}
    - {id: TODO-021, task: api, repo: api, plan: PLAN-011, run: "echo TODO-021 >> ../../ran.log"}
"""


def scoped(root: Path) -> dict[str, str]:
    """SCOPED's fleet, each repo a git repository with one commit (a push's todos run
    on the pushed commit: a worktree elsewhere, so ran.log is named whole); repo -> its
    commit."""
    eco = fleet(root)
    eco.write_text(SCOPED.replace("../../ran.log", str(root / "ran.log")))
    out = {}
    for r in ("core", "api", "web"):
        where = root / "repos" / r
        git(where, "init", "--quiet", "-b", "main")
        (where / "README").write_text(f"{r}\n")
        git(where, "add", "-A")
        git(where, "commit", "--quiet", "-m", r)
        out[r] = git(where, "rev-parse", "HEAD")
    return out


def test_a_push_runs_the_pushed_repos_todos_and_with_a_dependents_selector_its_consumers(
        cluster: Cluster) -> None:
    """A push to api: `...api` runs PLAN-010's todos of api and web (levelled over them
    alone), not core's; `tag:python` runs PLAN-011's todo of api only. A kept todo whose
    predecessor outside the scope is not completed refuses the start, naming it."""
    c = cluster
    shas = scoped(c.root)
    SHA = shas["api"]  # noqa: N806 - the pushed commit (a name as the module's)
    ran = c.root / "ran.log"
    c.start_workers(["core", "api", "web"])

    def ran_now() -> list[str]:
        got = sorted(ran.read_text().split()) if ran.exists() else []
        ran.unlink(missing_ok=True)
        return got

    # TODO-010 (core) is pending: api's todo must not run as if it had passed. A dry run
    # says so first, and starts and writes nothing.
    res = c.cli("trigger", "push", "--repo", "api", "--ref", SHA, "--dry-run", "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    would = {w["plan"]: w for w in json.loads(res.stdout)["would_start"]}
    assert "TODO-011 (api) waits for TODO-010 (core), which is pending" in (
        would["PLAN-010"]["error"])
    assert (would["PLAN-011"]["repos"], would["PLAN-011"]["levels"]) == (["api"],
                                                                         [["TODO-021"]])
    assert c.cli_json("sweep", "list") == [] and ran_now() == []
    res = c.cli("trigger", "push", "--repo", "api", "--ref", SHA, "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    refused, started = doc["started"]
    assert refused["plan"] == "PLAN-010" and refused["sweep_id"] is None
    assert "TODO-011 (api) waits for TODO-010 (core), which is pending" in refused["error"]
    assert started["plan"] == "PLAN-011" and started["trigger"]["repos"] == ["api"]
    assert c.wait_sweep(started["sweep_id"])["status"] == "succeeded"
    assert ran_now() == ["TODO-021"]

    assert c.cli_json("plan", "sweep", "PLAN-010", "--wait")["status"] == "succeeded"
    assert ran_now() == ["TODO-010", "TODO-011", "TODO-012"]  # the whole plan, synced

    shown = c.cli("trigger", "push", "--repo", "api", "--ref", SHA, "--dry-run").stdout
    assert ("PLAN-010: would start 2 todo(s) of api, web (push to api main at "
            f"{SHA}), in 2 level(s):\n  1. TODO-011\n  2. TODO-012") in shown
    doc = c.cli_json("trigger", "push", "--repo", "api", "--ref", SHA, "--wait")
    assert [(s["plan"], s["error"]) for s in doc["started"]] == [("PLAN-010", None),
                                                                  ("PLAN-011", None)]
    assert [e["status"] for e in doc["ended"]] == ["succeeded", "succeeded"]
    assert ran_now() == ["TODO-011", "TODO-012", "TODO-021"]  # not core's
    deps, python = (c.cli_json("sweep", "status", s["sweep_id"]) for s in doc["started"])
    assert sorted(deps["todos"]) == ["TODO-011", "TODO-012"]
    assert deps["levels"] == [["TODO-011"], ["TODO-012"]]
    assert deps["trigger"]["repos"] == ["api", "web"]
    assert sorted(python["todos"]) == ["TODO-021"] and python["trigger"]["repos"] == ["api"]
    shown = c.cli("sweep", "status", deps["sweep_id"]).stdout
    assert f"started by a push to api (main at {SHA}): the plan's todos of api, web" in shown
    # a push to core: ...api does not select core; tag:python runs core's todo alone
    doc = c.cli_json("trigger", "push", "--repo", "core", "--ref", shas["core"], "--wait")
    assert [s["plan"] for s in doc["started"]] == ["PLAN-011"]
    assert ran_now() == ["TODO-020"]


def test_embedded_a_push_runs_its_scope_in_a_plan_sweep_process_of_its_own(
        tmp_path: Path) -> None:
    """No COORD_REDIS_URL: each plan a push starts is a detached `coord plan sweep`
    process, given the push's scope with its trigger: it runs that scope alone."""
    import psutil

    shas = scoped(tmp_path)
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(eco.read_text().replace("repo: core, plan: PLAN-010,",
                                           "repo: core, plan: PLAN-010, status: completed,"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))

    def coord(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                               str(eco), *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)

    res = coord("trigger", "push", "--repo", "api", "--ref", shas["api"], "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    started = json.loads(res.stdout)["started"]
    try:
        def ended(sid: str) -> dict[str, Any] | None:
            got = coord("sweep", "status", sid, "--json")
            doc: dict[str, Any] = json.loads(got.stdout) if got.returncode == 0 else {}
            return doc if doc.get("status") in ("succeeded", "failed", "cancelled") else None

        deps, python = (wait_for(lambda s=s: ended(s["sweep_id"]), 120,
                                 f"embedded sweep of {s['plan']} to end", interval=0.5)
                        for s in started)
        assert (deps["plan"], deps["status"], sorted(deps["todos"])) == (
            "PLAN-010", "succeeded", ["TODO-011", "TODO-012"])
        assert deps["levels"] == [["TODO-011"], ["TODO-012"]]
        assert (python["plan"], python["status"], sorted(python["todos"])) == (
            "PLAN-011", "succeeded", ["TODO-021"])
        assert sorted((tmp_path / "ran.log").read_text().split()) == [
            "TODO-011", "TODO-012", "TODO-021"]
    finally:
        for s in started:  # each syncs the catalog and exits
            if s.get("pid") and psutil.pid_exists(s["pid"]):
                psutil.Process(s["pid"]).wait(timeout=120)
