"""`coord run CMD --repos SEL`: real `coord worker` processes on a real redis-server,
and an embedded run; selectors through `coord repo list --repos`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from tests.integration.helpers import ROOT, Cluster, read_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# web -> api -> db ; jobs -> db ; legacy alone
FLEET = """\
version: 1
repos:
  - {name: db, path: repos/db, tags: [sql]}
  - {name: api, path: repos/api, tags: [python], role: service}
  - {name: web, path: repos/web, tags: [js], role: service}
  - {name: jobs, path: repos/jobs, tags: [python]}
  - {name: legacy, path: repos/legacy, tags: [python, old]}
coordination:
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
    - {id: DEP-002, consumer: api, provider: db}
    - {id: DEP-003, consumer: jobs, provider: db}
"""
REPOS = ("db", "api", "web", "jobs", "legacy")
# Appends the repo it ran in (from the environment only) to one file, slowly enough that
# an order violation would show; fails where a `fail` file sits in the checkout.
CMD = ('sleep 0.2; echo "$COORD_REPO" >> ../order.log; echo "ran in $COORD_REPO"; '
       'if [ -e fail ]; then echo "broken $COORD_REPO" >&2; exit 3; fi')


def fleet(root: Path) -> Path:
    for r in REPOS:
        (root / "repos" / r).mkdir(parents=True, exist_ok=True)
    eco = root / "ecosystem.yaml"
    eco.write_text(FLEET)
    return eco


def embedded(eco: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`coord --file ECO ARGS` embedded (no COORD_REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                           *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


def runs(eco: Path) -> list[dict[str, Any]]:
    return [e for e in audit.read(audit.log_path(eco)) if e["op"] == "run"]


def test_run_on_real_workers_orders_providers_first_records_and_resumes(
        cluster: Cluster) -> None:
    cluster.env["COORD_SIGNING_KEY"] = "run-signing-key"
    cluster.env["COORD_USER"] = "ana"
    eco = fleet(cluster.root)
    cluster.eco = eco
    before = eco.read_bytes()
    cluster.start_workers(["db", "api", "web", "jobs"])
    (cluster.repo_dir("web") / "fail").write_text("")
    res = cluster.cli("run", CMD, "--repos", "...db,!legacy", "--wait", "--json", timeout=180)
    assert res.returncode == 1, res.stderr  # web failed: exit 1
    doc = json.loads(res.stdout)
    sid = doc["sweep_id"]
    rows = {r["repo"]: r for r in doc["summary"]}
    assert sorted(rows) == ["api", "db", "jobs", "web"]  # legacy excluded
    assert rows["web"]["status"] == "failed" and rows["web"]["exit_code"] == 3
    assert rows["web"]["last_line"] == "broken web"  # stderr's last line for a failure
    assert rows["api"]["status"] == "succeeded" and rows["api"]["last_line"] == "ran in api"
    assert rows["api"]["todo"] == "RUN-api" and rows["api"]["seconds"] >= 0.2
    order = read_lines(cluster.root / "repos" / "order.log")
    assert order[0] == "db" and order.index("api") < order.index("web"), order

    # A real sweep: its record, signed spec, events; the command as typed, repo-free.
    rec = cluster.rt.checkpoints.get_sweep(sid)
    assert rec["kind"] == "run" and rec.get("spec_sig"), rec.keys()
    spec = json.loads(rec["spec"])
    assert {t["run"] for t in spec["todos"].values()} == {CMD}
    assert spec["todos"]["RUN-web"]["preds"] == ["RUN-api"]
    assert any(e["kind"] == "todo.failed" and e["todo_id"] == "RUN-web"
               for e in cluster.events(sid))
    # Nothing written to the catalog; the run is in the audit log with who and what.
    assert eco.read_bytes() == before
    (entry,) = runs(eco)
    assert entry["who"] == "ana" and entry["ids"] == [sid] and entry["changes"] == []
    assert entry["decision"]["command"] == CMD
    assert entry["decision"]["selector"] == "...db,!legacy"
    assert entry["decision"]["repos"] == ["db", "api", "web", "jobs"]
    assert audit.verify(audit.log_path(eco))[1] is None

    # sweep status and resume take the ad-hoc todos; the frozen command runs again.
    st = cluster.cli_json("sweep", "status", sid)
    assert st["todos"]["RUN-web"]["status"] == "failed"
    (cluster.repo_dir("web") / "fail").unlink()
    again = cluster.cli_json("sweep", "resume", sid, "--only", "RUN-web", "--wait", timeout=120)
    assert again["status"] == "succeeded", again
    assert again["todos"]["RUN-web"]["attempts"] == 2
    assert eco.read_bytes() == before  # its sync writes nothing


def test_run_without_wait_queues_and_watch_follows(cluster: Cluster) -> None:
    eco = fleet(cluster.root)
    cluster.eco = eco
    out = cluster.cli_json("run", "echo $COORD_REPO", "--repos", "api...")
    assert out["todos"] == 2 and out["repos"] == ["db", "api"]
    assert out["levels"] == [["RUN-db"], ["RUN-api"]]
    cluster.start_workers(["db", "api"])
    w = cluster.cli("sweep", "watch", out["sweep_id"], "--json", timeout=120)
    assert w.returncode == 0, w.stderr
    assert json.loads(w.stdout)["status"] == "succeeded"


def test_embedded_run_and_selection_errors(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = embedded(eco, "run", 'echo "$COORD_REPO $COORD_REPO_TAGS"', "--repos", "tag:python,!legacy",
                 "--order", "none")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["level", "repo", "status", "seconds", "exit", "last", "line"]
    assert [ln.split()[:3] for ln in lines[1:]] == [["0", "api", "succeeded"],
                                                    ["0", "jobs", "succeeded"]]
    assert "api python" in r.stdout and "2 of 2 repos succeeded" in r.stderr

    # A typo: exit 2 with the closest names, nothing run, nothing recorded.
    n = len(runs(eco))
    r = embedded(eco, "run", "true", "--repos", "apii")
    assert r.returncode == 2 and "'apii' matches no repo" in r.stderr
    assert "did you mean api" in r.stderr and len(runs(eco)) == n


def test_run_with_cache_reuses_a_success_and_why_says_so(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    api = tmp_path / "repos" / "api"
    for args in (["init", "-q", "-b", "main"],
                 ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
                  "-m", "first"]):
        subprocess.run(["git", *args], cwd=api, check=True, capture_output=True)
    first = embedded(eco, "run", "echo built >> ../built.log", "--repos", "api", "--cache",
                     "--json")
    second = embedded(eco, "run", "echo built >> ../built.log", "--repos", "api", "--cache",
                      "--json")
    assert first.returncode == second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["summary"][0]["status"] == "succeeded"
    assert json.loads(second.stdout)["summary"][0]["status"] == "cached"
    assert read_lines(tmp_path / "repos" / "built.log") == ["built"]  # ran once
    why = embedded(eco, "why", "RUN-api", "--json")
    assert why.returncode == 0, why.stderr
    assert json.loads(why.stdout)["outcome"] == "hit"


def test_no_audit_record_no_run(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    audit.log_path(eco).mkdir()  # the log cannot be appended to
    r = embedded(eco, "run", "echo ran > ran.txt", "--repos", "api")
    assert r.returncode == 1 and "audit" in r.stderr, r.stderr
    assert not (tmp_path / "repos" / "api" / "ran.txt").exists()
    listed = embedded(eco, "sweep", "list", "--json")
    assert json.loads(listed.stdout) == []  # no sweep was started


def test_repo_list_shows_what_a_selector_selects(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = embedded(eco, "repo", "list", "--repos", "...db,!web", "--json")
    assert r.returncode == 0, r.stderr
    assert [x["name"] for x in json.loads(r.stdout)] == ["db", "api", "jobs"]
    r = embedded(eco, "repo", "list", "--repos", "web^...")
    assert r.returncode == 0 and "api" in r.stdout and "web" not in r.stdout.split("Repos")[-1]
    r = embedded(eco, "repo", "list", "--repos", "tag:pyton")
    assert r.returncode == 2 and "did you mean tag:python" in r.stderr
    # An exclusion alone is every repo but it; A&B what both select.
    r = embedded(eco, "repo", "list", "--repos", "!legacy", "--json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["db", "api", "web", "jobs"], r.stderr
    r = embedded(eco, "repo", "list", "--repos", "tag:python&...db,!legacy", "--json")
    assert [x["name"] for x in json.loads(r.stdout)] == ["api", "jobs"], r.stderr


def test_save_as_keeps_the_run_as_a_plan_and_runs_it(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = embedded(eco, "run", "echo $COORD_REPO", "--repos", "api...,web", "--save-as",
                 "Nightly echo", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    import yaml

    cat = yaml.safe_load(eco.read_text())
    (plan,) = cat["coordination"]["plans"]
    assert plan["title"] == "Nightly echo" and plan["id"] == doc["saved_as"]["plan"]
    todos = {t["repo"]: t for t in cat["coordination"]["todos"]}
    assert sorted(todos) == ["api", "db", "web"]
    assert {t["run"] for t in todos.values()} == {"echo $COORD_REPO"}
    assert todos["api"]["blocked_by"] == [todos["db"]["id"]]
    assert todos["web"]["blocked_by"] == [todos["api"]["id"]]
    assert all(t["status"] == "completed" for t in todos.values())  # run and synced
    ops = [e["op"] for e in audit.read(audit.log_path(eco))]
    assert ops[:2] == ["run.save_as", "run"], ops


def test_a_cycle_is_refused_before_save_as_writes_anything(tmp_path: Path) -> None:
    """--save-as with the selected repos' dependencies in a cycle and --cycles error:
    exit 2 naming the cycle, and neither the catalog nor the audit log changed (the
    plan was written before the cycle was found)."""
    eco = fleet(tmp_path)
    eco.write_text(FLEET + "    - {id: DEP-004, consumer: db, provider: web}\n")
    before = eco.read_bytes()
    for extra in (["--save-as", "Cyclic"], []):
        r = embedded(eco, "run", "true", "--repos", "db,api,web", "--cycles", "error", *extra)
        assert r.returncode == 2, r.stderr
        assert "cycle among api, db, web" in r.stderr, r.stderr
        assert "--order none" in r.stderr and "--cycles group" in r.stderr
        assert eco.read_bytes() == before
        assert not audit.log_path(eco).exists() or audit.read(audit.log_path(eco)) == []
    # --order none runs it (no order, no cycle), and --save-as keeps it.
    r = embedded(eco, "run", "true", "--repos", "db,api,web", "--order", "none",
                 "--save-as", "Unordered", "--json")
    assert r.returncode == 0, r.stderr


def test_a_missing_checkout_says_how_to_fix_it_with_flags_that_exist(tmp_path: Path) -> None:
    """Issue #61: the reason named `--path`, which `coord run` does not have; only
    `coord worker` does, so the hint names it, with the repo, beside the catalog's
    path:."""
    eco = fleet(tmp_path)
    (tmp_path / "repos" / "jobs").rmdir()
    r = embedded(eco, "run", "true", "--repos", "jobs", "--json")
    assert r.returncode == 1, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert f"checkout {tmp_path / 'repos' / 'jobs'} does not exist" in said, said
    assert "or pass --path" not in said
    assert "coord worker --path jobs=DIR" in said and "set its path: in the catalog" in said
