"""Embedded sweeps outlive their process, seen through the real CLI in subprocesses:
`plan sweep` in one process, `sweep list|status`, `events`, `history` in the next;
two sweeps on one catalog at once both kept; Ctrl-C keeps the sweep, cancelled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.support.cli import HEAVY, ROOT, clean_error, coord, loaded
from tests.unit.support.sweeps import write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def cli_json(cat: Path, *args: str) -> Any:
    r = coord(cat, *args, "--json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def popen(cat: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    return subprocess.Popen([sys.executable, "-m", "coordination.cli.main", "--file", str(cat), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT, preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """The child gets Ctrl-C as a shell's foreground command does, even when the suite
    runs where SIGINT is ignored (started with `&` by a script: ignored signals are
    inherited, and coord rightly leaves an ignored SIGINT ignored, as nohup expects)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_later_process_sees_an_ended_embedded_sweep(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo warming up the flux capacitor"},
        {"id": "TODO-002", "repo": "web", "task": "Rebuild the index", "run": "exit 4",
         "blocked_by": ["TODO-001"]},
    ])
    done = cli_json(cat, "plan", "sweep", "PLAN-001", "--wait")
    sid = done["sweep_id"]
    assert done["status"] == "failed"

    listed = cli_json(cat, "sweep", "list")
    assert [(r["sweep_id"], r["status"]) for r in listed] == [(sid, "failed")]
    status = cli_json(cat, "sweep", "status", sid)
    assert status["status"] == "failed" and status["reason"] == done["reason"]
    assert status["todos"]["TODO-002"]["exit_code"] == 4
    kinds = [e["kind"] for e in cli_json(cat, "events", "--sweep", sid)]
    assert kinds[0] == "sweep.queued" and "sweep.finished" in kinds
    assert "todo.failed" in [e["kind"] for e in cli_json(cat, "events")]
    human = coord(cat, "sweep", "status", sid)
    assert human.returncode == 0 and "failed" in human.stdout

    found = cli_json(cat, "history", "search", "flux capacitor")
    assert [(r["kind"], r["sweep_id"], r["todo_id"]) for r in found] == [("todo", sid, "TODO-001")]
    by_title = cli_json(cat, "history", "search", "rebuild the INDEX", "--repo", "web")
    assert [(r["todo_id"], r["status"], r["exit_code"]) for r in by_title] == [("TODO-002", "failed", 4)]
    assert cli_json(cat, "history", "search", "rebuild", "--repo", "api") == []
    sweeps = cli_json(cat, "history", "search", "", "--kind", "sweep")
    assert [(r["sweep_id"], r["status"]) for r in sweeps] == [(sid, "failed")]
    # The sync's catalog edit is in the audit log, and found as an edit.
    edits = cli_json(cat, "history", "search", "", "--kind", "edit")
    assert edits and edits[0]["kind"] == "edit" and "TODO-002" in edits[0]["ids"]

    trends = cli_json(cat, "history", "trends")
    assert set(trends) == {"repos", "todos", "flakiest", "slowest", "velocity", "bottlenecks"}
    # TODO-001 completed this week; web's TODO-002 waited, ready but blocked, on api's.
    velocity = trends["velocity"]
    assert velocity["total"][velocity["weeks"][-1]] == 1
    assert velocity["repos"]["api"][velocity["weeks"][-1]] == 1 and "web" not in velocity["repos"]
    [api] = trends["bottlenecks"]
    assert (api["repo"], api["waits"], api["dependents"]) == ("api", 1, 1) and api["wait_s"] > 0
    assert trends["repos"]["web"] | {"p50_s": None, "p95_s": None} == {
        "runs": 1, "succeeded": 0, "failed": 1, "success_rate": 0.0, "p50_s": None, "p95_s": None}
    assert trends["todos"]["TODO-001"]["success_rate"] == 1.0
    chart = coord(cat, "history", "trends")
    assert chart.returncode == 0 and "web" in chart.stdout and "█" in chart.stdout
    assert "Velocity" in chart.stdout and "Bottlenecks" in chart.stdout


def two_plans(root: Path) -> Path:
    root.mkdir(parents=True)
    todos = [{"id": f"TODO-00{i}", "task": f"plan {p}", "repo": r, "plan": p, "timeout": 60,
              "run": f"echo go > {p}.started; while [ ! -f ../{other}.started ]; do sleep 0.05; done"}
             for i, (p, other, r) in enumerate([("PLAN-001", "PLAN-002", "api"),
                                                ("PLAN-002", "PLAN-001", "web")], 1)]
    # Each todo waits (in its repo's checkout) until the other plan's todo has started:
    # the two sweeps are surely running at once.
    for t, r in zip(todos, ("api", "web")):
        t["run"] = t["run"].replace("../", f"../{'web' if r == 'api' else 'api'}/")
        (root / "repos" / r).mkdir(parents=True)
    doc = {"version": 1, "repos": [{"name": r, "path": f"repos/{r}"} for r in ("api", "web")],
           "coordination": {"issues": [], "todos": todos,
                            "plans": [{"id": p, "title": p, "status": "active", "repos": [r]}
                                      for p, r in (("PLAN-001", "api"), ("PLAN-002", "web"))]}}
    cat = root / "ecosystem.yaml"
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cat


def test_two_embedded_processes_on_one_catalog_both_keep_their_sweep(tmp_path: Path) -> None:
    cat = two_plans(tmp_path / "eco")
    procs = [popen(cat, "plan", "sweep", p, "--wait", "--json") for p in ("PLAN-001", "PLAN-002")]
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    ids = {d["sweep_id"] for d in docs}
    assert {d["status"] for d in docs} == {"succeeded"}
    assert {r["sweep_id"] for r in cli_json(cat, "sweep", "list")} == ids
    for d in docs:
        assert cli_json(cat, "sweep", "status", d["sweep_id"])["status"] == "succeeded"
    found = cli_json(cat, "history", "search", "", "--kind", "sweep")
    assert {r["sweep_id"] for r in found} == ids


def test_ctrl_c_keeps_the_embedded_sweep_ended(tmp_path: Path) -> None:
    # Ctrl-C: the embedded workers stop (warm: the running todo finishes), and the
    # sweep is kept beside the catalog, ended: never left "running" with no process
    # to run it (see test_recording's test_a_sweep_live_when_its_workers_stop_*).
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "touch started; sleep 2"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]}])
    p = popen(cat, "plan", "sweep", "PLAN-001", "--wait")
    started = cat.parent / "repos" / "api" / "started"
    wait_for(started.exists, timeout=60, what="the todo to start")
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    # Said what it waits for, and how not to.
    assert "waiting for TODO-001 (api) to finish; Ctrl-C again stops it now" in err, err
    [row] = cli_json(cat, "sweep", "list")
    assert row["status"] in ("succeeded", "cancelled"), (row, err)
    assert cli_json(cat, "sweep", "status", row["sweep_id"])["status"] == row["status"]
    [rec] = cli_json(cat, "history", "search", "", "--kind", "sweep")
    assert rec["sweep_id"] == row["sweep_id"]


def test_a_second_ctrl_c_stops_the_running_todo_now(tmp_path: Path) -> None:
    # As Celery's workers: the first Ctrl-C waits for running todos, a second one stops
    # them (their process group is killed) and the sweep ends cancelled, kept.
    import threading

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "touch started; sleep 97.25"}])
    p = popen(cat, "plan", "sweep", "PLAN-001", "--wait")
    lines: list[str] = []
    assert p.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stderr.readline, "")),
                              daemon=True)
    reader.start()
    wait_for((cat.parent / "repos" / "api" / "started").exists, timeout=60,
             what="the todo to start")
    p.send_signal(signal.SIGINT)
    wait_for(lambda: any("Ctrl-C again stops it now" in line for line in lines), timeout=30,
             what="the interrupted message")
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)  # long before the todo's 97 s
    reader.join(timeout=10)
    assert p.returncode == 130, "".join(lines)
    import psutil

    def lingering() -> list[int]:
        out = []
        for proc in psutil.process_iter(["cmdline"]):
            if "sleep 97.25" in " ".join(proc.info["cmdline"] or ()):
                out.append(proc.pid)
        return out

    wait_for(lambda: not lingering(), timeout=10, what="the todo's command to be gone")
    [row] = cli_json(cat, "sweep", "list")
    assert row["status"] == "cancelled", row


@pytest.mark.parametrize("args", [
    ("history", "search", "x", "--since", "the day before"),
    ("history", "search", "x", "--kind", "nope"),
    ("history", "search", "x", "--limit", "0"),
    ("history", "trends", "--days", "0"),
], ids=" ".join)
def test_bad_input_exits_2(example_catalog: Path, args: tuple[str, ...]) -> None:
    clean_error(coord(example_catalog, *args), 2)


def test_history_imports_no_celery_and_no_embedded_server(example_catalog: Path) -> None:
    for args in (("history", "search", "x", "--json"), ("history", "trends", "--json")):
        modules = loaded(example_catalog, *args)
        assert "coordination" in modules
        assert not modules & {*HEAVY, "fakeredis"}, sorted(modules & {*HEAVY, "fakeredis"})


def test_a_later_embedded_process_resumes_and_rolls_back_a_kept_sweep(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "touch made", "undo": "rm made"},
        {"id": "TODO-002", "repo": "web", "run": "test -f fixed", "blocked_by": ["TODO-001"]},
    ])
    first = cli_json(cat, "plan", "sweep", "PLAN-001", "--wait")
    sid = first["sweep_id"]
    assert first["status"] == "failed"
    (cat.parent / "repos" / "web" / "fixed").touch()

    r = coord(cat, "sweep", "resume", sid, "--json")  # embedded: runs here, to the end
    assert r.returncode == 0, r.stderr
    resumed = json.loads(r.stdout)
    assert resumed["status"] == "succeeded" and resumed["run"] == 1
    assert cli_json(cat, "sweep", "status", sid)["status"] == "succeeded"
    runs = cli_json(cat, "history", "search", "", "--kind", "sweep")
    assert [(x["run"], x["status"]) for x in runs] == [(1, "succeeded"), (0, "failed")]

    made = cat.parent / "repos" / "api" / "made"
    assert made.exists()
    r = coord(cat, "sweep", "rollback", sid, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "rolled_back" and not made.exists()
    assert cli_json(cat, "sweep", "status", sid)["status"] == "rolled_back"
