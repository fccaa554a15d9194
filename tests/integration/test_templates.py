"""Todo templates (``for_each:``) end to end: a template over a generated 6-repo fleet
with ``deps: follow`` on real `coord worker` processes and a real redis-server, and an
embedded run. Start order is checked against the dependency edges; the instance ids
``TODO-010[api]`` are taken by sweep status, resume --only, why and todo run; the sync
writes the instances' outcomes under the template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.integration.helpers import ROOT, Cluster, read_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: consumer -> provider: db <- api <- web <- docs ; db <- jobs ; api <- cli
EDGES = [("api", "db"), ("web", "api"), ("docs", "web"), ("jobs", "db"), ("cli", "api")]
REPOS = ["db", "api", "web", "jobs", "cli", "docs"]
# Logs when it starts and ends in its repo (named by the environment only); fails where
# a `fail` file sits in the checkout.
CMD = ('echo "start $COORD_REPO" >> ../order.log; sleep 0.3; '
       'echo "$COORD_REPO_PATH|$COORD_REPO_TAGS" > seen.txt; '
       'if [ -e fail ]; then echo "broken $COORD_REPO" >&2; exit 3; fi; '
       'echo "end $COORD_REPO" >> ../order.log')


def fleet(root: Path) -> Path:
    """The generated fleet and a plan with one template over every repo but docs' tag."""
    for r in REPOS:
        (root / "repos" / r).mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}", "tags": ["svc", f"n{i}"]}
                  for i, r in enumerate(REPOS)],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "upgrade everything", "status": "active"}],
            "todos": [{"id": "TODO-010", "task": "upgrade", "plan": "PLAN-001",
                       "for_each": "tag:svc", "deps": "follow", "run": CMD, "timeout": 60}],
            "dependencies": [{"id": f"DEP-{i + 1:03d}", "consumer": c, "provider": p}
                             for i, (c, p) in enumerate(EDGES)],
        },
    }
    eco = root / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco


def template(eco: Path) -> dict[str, object]:
    item: dict[str, object] = yaml.safe_load(eco.read_text())["coordination"]["todos"][0]
    return item


def check_order(log: Path, ran: set[str]) -> None:
    """Every consumer that ran started after its provider's instance ended."""
    lines = read_lines(log)
    at = {ln: i for i, ln in enumerate(lines)}
    for consumer, provider in EDGES:
        if consumer in ran and provider in ran:
            assert at[f"end {provider}"] < at[f"start {consumer}"], lines


def test_template_on_real_workers(cluster: Cluster) -> None:
    eco = fleet(cluster.root)
    cluster.eco = eco
    (cluster.repo_dir("cli") / "fail").write_text("")

    dry = cluster.cli_json("plan", "sweep", "PLAN-001", "--dry-run")
    (t,) = dry["templates"]
    assert t["repos"] == REPOS and t["count"] == 6 and t["deps"] == "follow"
    assert dry["levels"] == [["TODO-010[db]"], ["TODO-010[api]", "TODO-010[jobs]"],
                             ["TODO-010[cli]", "TODO-010[web]"], ["TODO-010[docs]"]]
    assert dry["critical_path"] == ["TODO-010[db]", "TODO-010[api]", "TODO-010[web]",
                                    "TODO-010[docs]"]
    assert not (cluster.repo_dir("api") / "seen.txt").exists()  # a dry run touches nothing

    cluster.start_workers(REPOS)
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--json", timeout=200)
    assert res.returncode == 1, res.stderr  # cli failed
    sid = json.loads(res.stdout)["sweep_id"]
    st = cluster.cli_json("sweep", "status", sid)
    got = {tid: v["status"] for tid, v in st["todos"].items()}
    assert got == {"TODO-010[db]": "succeeded", "TODO-010[api]": "succeeded",
                   "TODO-010[jobs]": "succeeded", "TODO-010[web]": "succeeded",
                   "TODO-010[docs]": "succeeded", "TODO-010[cli]": "failed"}
    check_order(cluster.root / "repos" / "order.log", set(REPOS) - {"cli"})
    # the environment, never the command text, carries the repo
    seen = (cluster.repo_dir("web") / "seen.txt").read_text().strip()
    assert seen == f"{cluster.repo_dir('web').resolve()}|svc,n2"
    rec = cluster.rt.checkpoints.get_sweep(sid)
    spec = json.loads(rec["spec"])
    assert {x["run"] for x in spec["todos"].values()} == {CMD}
    assert spec["todos"]["TODO-010[web]"]["preds"] == ["TODO-010[api]"]
    human = cluster.cli("sweep", "status", sid)
    rows = [ln.split()[0] for ln in human.stdout.splitlines() if ln.startswith("TODO-")]
    assert "TODO-010[db]" in rows, human.stdout  # printed as it is, not eaten as markup
    assert "TODO-010[cli] failed" in human.stdout.splitlines()[0], human.stdout
    assert any(e["kind"] == "todo.failed" and e["todo_id"] == "TODO-010[cli]"
               for e in cluster.events(sid))

    # the sync wrote each instance's outcome under the template, which stays once
    item = template(eco)
    assert item["instances"] == {"db": "completed", "api": "completed", "web": "completed",
                                 "jobs": "completed", "cli": "failed", "docs": "completed"}
    assert item["status"] == "failed"
    assert len(yaml.safe_load(eco.read_text())["coordination"]["todos"]) == 1
    show = cluster.cli("todo", "show", "TODO-010")
    assert "TODO-010[cli]" in show.stdout and "failed" in show.stdout, show.stdout

    # the web view's todo document, the id URL-encoded as the page sends it
    from starlette.testclient import TestClient

    from coordination.ui.app import create_app

    web = TestClient(create_app(cluster.rt, eco), base_url="http://localhost")
    page = web.get(f"/api/sweeps/{sid}/todos/{quote('TODO-010[cli]', safe='')}")
    assert page.status_code == 200 and page.json()["status"] == "failed", page.text

    why = cluster.cli_json("why", "TODO-010[api]")
    assert why["todo_id"] == "TODO-010[api]" and why["cache"] is False

    # resume --only the failed instance; its sync completes the template and the plan
    (cluster.repo_dir("cli") / "fail").unlink()
    again = cluster.cli_json("sweep", "resume", sid, "--only", "TODO-010[cli]", "--wait",
                             timeout=120)
    assert again["status"] == "succeeded", again
    assert again["todos"]["TODO-010[cli]"]["attempts"] == 2
    item = template(eco)
    assert item["instances"]["cli"] == "completed" and item["status"] == "completed"  # type: ignore[index]

    # todo run one instance (its blocker TODO-010[api] completed in the catalog)
    one = cluster.cli_json("todo", "run", "TODO-010[web]", "--wait", timeout=120)
    assert one["status"] == "succeeded", one
    assert list(one["todos"]) == ["TODO-010[web]"] and "[" not in one["sweep_id"]


def test_embedded_template_sweep_and_bad_ids(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))

    def coord(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                               str(eco), *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=180)

    shown = coord("plan", "show", "PLAN-001")  # ids printed as they are, not as markup
    assert "level 0: TODO-010[db]" in shown.stdout, shown.stdout + shown.stderr
    assert "TODO-010[web]" in coord("plan", "status", "PLAN-001").stdout
    assert coord("plan", "validate", "PLAN-001").returncode == 0

    r = coord("plan", "sweep", "PLAN-001", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    check_order(tmp_path / "repos" / "order.log", set(REPOS))
    item = template(eco)
    assert item["status"] == "completed"
    assert item["instances"] == {r: "completed" for r in REPOS}
    # a repo the template does not select is named, with the ones it does
    bad = coord("todo", "show", "TODO-010[nope]")
    assert bad.returncode == 2 and "does not select 'nope'" in bad.stderr
    bad = coord("todo", "run", "TODO-010[nope]")
    assert bad.returncode == 2 and "TODO-010[nope]" in bad.stderr, bad.stderr
