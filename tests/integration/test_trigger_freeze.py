"""`coord trigger push` and `coord freeze` from the command line, on a real redis-server
with real `coord worker` processes; `sweep pause|cancel --all`; a freeze held across
processes in embedded mode too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, Cluster

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
    assert [s["plan"] for s in doc["started"]] == ["PLAN-001", "PLAN-002"]
    assert [e["status"] for e in doc["ended"]] == ["succeeded", "succeeded"]
    for s in doc["started"]:
        st = c.cli_json("sweep", "status", s["sweep_id"])
        assert st["trigger"] == {"kind": "push", "repo": "core", "branch": "main", "sha": SHA}
    starts = [e for e in c.cli_json("audit") if e["op"] == "sweep.start"]
    assert sorted(e["ids"][1] for e in starts) == ["PLAN-001", "PLAN-002"]
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
    assert len(c.cli_json("sweep", "list")) == 3


def test_freeze_refuses_starts_and_pause_all_stops_what_runs(cluster: Cluster) -> None:
    c = cluster
    fleet(c.root)
    first = c.cli_json("plan", "sweep", "PLAN-001")["sweep_id"]  # no worker: stays queued
    second = c.cli_json("plan", "sweep", "PLAN-002")["sweep_id"]
    res = c.cli("freeze", "--reason", "incident 4711")
    assert res.returncode == 0 and "frozen" in res.stdout, res.stderr
    for argv in (("plan", "sweep", "PLAN-001"), ("todo", "run", "TODO-001"),
                 ("trigger", "push", "--repo", "api", "--ref", SHA)):
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
    assert [s["plan"] for s in doc["started"]] == ["PLAN-001", "PLAN-002"]
    for s in doc["started"]:
        st = c.cli_json("sweep", "status", s["sweep_id"])
        assert st["trigger"] == {"kind": "push", "repo": "core", "branch": "main", "sha": sha}
    assert c.cli("freeze", "--reason", "incident").returncode == 0
    frozen = client.post("/hooks/github", content=body,
                         headers={**head, **sign("github", body, "s3")}).json()
    assert [s["sweep_id"] for s in frozen["started"]] == [None, None]
    assert all("frozen" in s["error"] for s in frozen["started"]), frozen
    assert len(c.cli_json("sweep", "list")) == 2
