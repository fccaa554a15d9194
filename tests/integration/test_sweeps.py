"""Sweeps end to end: real redis-server, real `coord worker` processes, the real CLI.

Todos record what they did in files in their checkout (start/end timestamps,
one line per run), so every assertion is about what actually ran and when.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from coordination.runtime.events import stream_id_key
from tests.integration.helpers import (
    PLAN,
    SUPERVISE_INTERVAL,
    TIMED,
    Cluster,
    T,
    intervals,
    max_overlap,
    read_lines,
    todo_processes,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DESIGN_SWEEP_FIELDS = {"sweep_id", "plan", "strategy", "status", "todos"}
DESIGN_TODO_FIELDS = {"status", "attempts", "exit_code", "worker", "started_at", "finished_at", "output_tail"}

# A diamond (1 -> 2,3 -> 4) and a chain (5 -> 6 -> 7) over four repos.
# TODO-005 is slow and alone on its repo: with levels, level 1 waits for it;
# eager does not. It outlasts the supervisor's grace (2 s) after TODO-001 by
# far, so a supervisor that bypassed the level barrier would be caught.
DAG = {
    "TODO-001": ("a", [], 0.3),
    "TODO-002": ("b", ["TODO-001"], 0.3),
    "TODO-003": ("c", ["TODO-001"], 0.3),
    "TODO-004": ("c", ["TODO-002", "TODO-003"], 0.3),
    "TODO-005": ("d", [], 3.5),
    "TODO-006": ("a", ["TODO-005"], 0.3),
    "TODO-007": ("b", ["TODO-006"], 0.3),
}
REPOS = {"a": 1, "b": 1, "c": 1, "d": 1}


@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_multi_repo_plan_runs_in_dependency_order_and_syncs_the_catalog(
    cluster: Cluster, strategy: str
) -> None:
    todos = [T(tid, repo, TIMED.format(s=s) + f"; echo ran {tid}", blocked_by=preds)
             for tid, (repo, preds, s) in DAG.items()]
    cluster.write_catalog(REPOS, todos)
    cluster.start_workers(REPOS)

    st = cluster.cli_json("plan", "sweep", PLAN, "--strategy", strategy, "--wait", timeout=120)
    sid = st["sweep_id"]
    assert st["status"] == "succeeded", st
    assert st["strategy"] == strategy

    spans = intervals({tid: cluster.repo_dir(repo) for tid, (repo, _, _) in DAG.items()})
    for tid, (_, preds, _) in DAG.items():
        for p in preds:
            assert spans[tid][0] >= spans[p][1], f"{tid} started before its predecessor {p} ended"
    # The strategies really differ: levels waits for the whole previous level
    # (the slow TODO-005), eager only for a todo's own predecessors.
    if strategy == "levels":
        assert spans["TODO-002"][0] >= spans["TODO-005"][1]
        assert spans["TODO-004"][0] >= spans["TODO-006"][1]
    else:
        assert spans["TODO-002"][0] < spans["TODO-005"][1]

    # `coord sweep status --json` carries every field DESIGN.md promises.
    status = cluster.cli_json("sweep", "status", sid)
    assert DESIGN_SWEEP_FIELDS <= set(status)
    assert (status["sweep_id"], status["plan"], status["strategy"], status["status"]) == (
        sid, PLAN, strategy, "succeeded")
    assert set(status["todos"]) == set(DAG)
    for tid, v in status["todos"].items():
        assert DESIGN_TODO_FIELDS <= set(v), tid
        repo = DAG[tid][0]
        assert v["status"] == "succeeded" and v["attempts"] == 1 and v["exit_code"] == 0, v
        assert v["worker"].startswith(f"{repo}-"), v  # run by its own repo's worker
        assert v["started_at"] and v["finished_at"] and v["started_at"] <= v["finished_at"]
        assert f"ran {tid}" in v["output_tail"]

    # --wait synced the outcome into the catalog.
    cat = {t["id"]: t for t in cluster.catalog()["coordination"]["todos"]}
    for tid in DAG:
        assert cat[tid]["status"] == "completed", cat[tid]
        assert isinstance(cat[tid]["actual_hours"], (int, float)) and cat[tid]["actual_hours"] >= 0


def test_failed_todo_skips_only_its_dependents_and_resume_reruns_only_what_did_not_succeed(
    cluster: Cluster,
) -> None:
    count = "echo run >> $COORD_TODO_ID.count"
    todos = [
        T("TODO-001", "a", count),
        T("TODO-002", "b", count + "; echo broken >&2; exit 3", blocked_by=["TODO-001"], retries=2),
        T("TODO-003", "c", count, blocked_by=["TODO-002"]),  # depends on the failure
        T("TODO-004", "a", count, blocked_by=["TODO-001"]),  # a sibling: not affected
        T("TODO-005", "c", count),  # independent
    ]
    cluster.write_catalog({"a": 1, "b": 1, "c": 1}, todos)
    cluster.start_workers(["a", "b", "c"])
    where = {t.id: cluster.repo_dir(t.repo) for t in todos}

    def runs(tid: str) -> int:
        return len(read_lines(where[tid] / f"{tid}.count"))

    res = cluster.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=120)
    assert res.returncode == 1, res.stderr
    st = json.loads(res.stdout)
    sid = st["sweep_id"]
    assert st["status"] == "failed"
    assert "TODO-002" in st["reason"], st["reason"]
    t2 = st["todos"]["TODO-002"]
    assert t2["status"] == "failed" and t2["exit_code"] == 3
    assert t2["attempts"] == 3 and runs("TODO-002") == 3  # retries + 1
    assert "broken" in t2["output_tail"]
    assert st["todos"]["TODO-003"]["status"] == "skipped" and runs("TODO-003") == 0
    for tid in ("TODO-001", "TODO-004", "TODO-005"):
        assert st["todos"][tid]["status"] == "succeeded" and runs(tid) == 1, tid
    cat = {t["id"]: t for t in cluster.catalog()["coordination"]["todos"]}
    assert cat["TODO-002"]["status"] == "failed" and cat["TODO-001"]["status"] == "completed"

    # Fix the command by editing the YAML text, as a person would, then resume.
    text = cluster.eco.read_text()
    broken = json.dumps(count + "; echo broken >&2; exit 3")
    assert text.count(broken) == 1
    cluster.eco.write_text(text.replace(broken, json.dumps(count)))
    res = cluster.cli("sweep", "resume", sid, "--wait", "--json", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    st = json.loads(res.stdout)
    assert st["sweep_id"] == sid and st["status"] == "succeeded", st
    assert all(v["status"] == "succeeded" for v in st["todos"].values()), st["todos"]
    # What succeeded the first time did not run again.
    assert {t: runs(t) for t in where} == {
        "TODO-001": 1, "TODO-002": 4, "TODO-003": 1, "TODO-004": 1, "TODO-005": 1}
    cat = {t["id"]: t for t in cluster.catalog()["coordination"]["todos"]}
    assert all(cat[t]["status"] == "completed" for t in where), cat


@pytest.mark.parametrize("concurrency", [1, 2])
def test_two_workers_of_one_repo_respect_its_concurrency(cluster: Cluster, concurrency: int) -> None:
    ids = [f"TODO-{i:03d}" for i in range(1, 7)]
    cluster.write_catalog({"a": concurrency}, [T(t, "a", TIMED.format(s=0.4)) for t in ids])
    cluster.start_workers(["a", "a"])
    st = cluster.cli_json("plan", "sweep", PLAN, "--wait", timeout=120)
    assert st["status"] == "succeeded", st
    spans = intervals({t: cluster.repo_dir("a") for t in ids})
    workers = {v["worker"] for v in st["todos"].values()}
    assert max_overlap(spans.values()) == concurrency, (spans, workers)
    if concurrency == 1:
        ordered = sorted(spans.values())
        for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
            assert s2 >= e1, f"[{s1}, {e1}] and [{s2}, {e2}] overlap"


def test_cancel_stops_the_running_todo_and_nothing_after_it_runs(cluster: Cluster) -> None:
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "echo started > $COORD_TODO_ID.mark; sleep 60; echo done >> $COORD_TODO_ID.mark"),
        T("TODO-002", "b", "echo ran > $COORD_TODO_ID.mark", blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["a", "b"])
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    wait_until(lambda: todo_processes(sid, "TODO-001"), 10, "TODO-001's process")

    t0 = time.monotonic()
    out = cluster.cli_json("sweep", "cancel", sid, timeout=60)
    assert out["cancelled"] is True and out["status"] == "cancelled"
    assert out["still_running"] == []
    wait_until(lambda: not todo_processes(sid), 5, "TODO-001's processes to be gone")
    assert time.monotonic() - t0 < 10

    st = cluster.status(sid)
    assert st["status"] == "cancelled"
    assert st["todos"]["TODO-001"]["status"] == "cancelled"
    assert st["todos"]["TODO-002"]["status"] == "cancelled"
    # Several supervisor passes later, nothing has run after it.
    time.sleep(4 * SUPERVISE_INTERVAL)
    assert read_lines(cluster.repo_dir("a") / "TODO-001.mark") == ["started"]
    assert not (cluster.repo_dir("b") / "TODO-002.mark").exists()
    assert cluster.status(sid)["status"] == "cancelled"
    kinds = [e["kind"] for e in cluster.events(sid)]
    assert "sweep.cancelled" in kinds and "todo.succeeded" not in kinds


def test_events_replay_a_finished_sweep_and_follow_a_running_one_to_its_end(cluster: Cluster) -> None:
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "sleep 1.5"),
        T("TODO-002", "b", "true", blocked_by=["TODO-001"]),
        T("TODO-003", "b", "true"),
    ])
    cluster.start_workers(["a", "b"])
    ids = {"TODO-001", "TODO-002", "TODO-003"}

    # Follow, started mid-sweep: prints JSON lines through to sweep.finished and exits by itself.
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    follower = cluster.popen("events", "--sweep", sid, "--follow", "--json")
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    kinds = [e["kind"] for e in lines]
    assert kinds[0] == "sweep.queued" and kinds[-1] == "sweep.finished", kinds
    assert lines[-1]["status"] == "succeeded"
    assert sorted(e["todo_id"] for e in lines if e["kind"] == "todo.succeeded") == sorted(ids)
    assert all(e["sweep_id"] == sid for e in lines)

    # Replay, started after the sweep ended: the same events, in order.
    replay = cluster.cli_json("events", "--sweep", sid)
    assert isinstance(replay, list)
    rkinds = [e["kind"] for e in replay]
    assert rkinds[0] == "sweep.queued" and rkinds[-1] == "sweep.finished", rkinds
    assert [e["id"] for e in replay] == [e["id"] for e in lines]
    succeeded = [e["todo_id"] for e in replay if e["kind"] == "todo.succeeded"]
    assert sorted(succeeded) == sorted(ids)  # exactly one per todo
    assert sorted(e["todo_id"] for e in replay if e["kind"] == "todo.started") == sorted(ids)
    # In the order the ledger holds them: by stream id (the server's clock). An event's
    # ts is its emitter's clock at the transition, so two processes emitting within a
    # millisecond may land in the other order (and machines' clocks differ): each is
    # only near its id's time.
    keys = [stream_id_key(e["id"]) for e in replay]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(abs(e["ts"] - k[0] / 1000) < 60 for e, k in zip(replay, keys)), replay


def test_one_worker_serves_several_repos_each_at_its_own_concurrency(cluster: Cluster) -> None:
    """`coord worker --repo a --repo b`: both repos' todos run in that one process; repo a
    (concurrency 1) never runs two at once while b (concurrency 2) does."""
    todos = [T(f"TODO-00{i}", repo, TIMED.format(s=0.6))
             for i, repo in enumerate(["a", "a", "b", "b"], start=1)]
    cluster.write_catalog({"a": 1, "b": 2}, todos)
    bad = cluster.cli("worker", "--repo", "a", "--repo", "b", "--path", "/tmp")
    assert bad.returncode == 2 and "one repo" in bad.stderr
    # one process (--processes 1): by default a worker of several repos forks one per
    # usable core (test_worker_processes.py)
    w = cluster.start_worker("a", extra=("--repo", "b", "--processes", "1"))
    listed = cluster.cli_json("workers")
    assert [sorted(x["repos"]) for x in listed] == [["a", "b"]]
    st = cluster.wait_sweep(cluster.start_sweep())
    assert st["status"] == "succeeded", st
    assert {v["worker"].split("-")[0] for v in st["todos"].values()} == {"a+b"}
    spans = intervals({f"TODO-00{i}": cluster.repo_dir(r)
                       for i, r in enumerate(["a", "a", "b", "b"], start=1)})
    assert max_overlap([spans["TODO-001"], spans["TODO-002"]]) == 1
    assert max_overlap([spans["TODO-003"], spans["TODO-004"]]) == 2
    assert w.alive()


def test_the_waiting_cli_sends_and_waits_without_importing_celery(cluster: Cluster) -> None:
    """The CLI writes its todos' messages itself (coordination.dispatch.envelope) and real
    Celery workers run them: a sweep started and waited for by a process that never
    imports Celery or kombu."""
    import subprocess
    import sys

    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted(\n"
             "    {m.split('.')[0] for m in sys.modules})) + '\\n'))\n"
             "from coordination.cli.main import main\n"
             "main(sys.argv[1:])\n")
    cluster.write_catalog({"a": 1, "b": 1}, [T("TODO-001", "a", "echo one"),
                                             T("TODO-002", "b", "echo two",
                                               blocked_by=["TODO-001"])])
    cluster.start_workers(["a", "b"])
    res = subprocess.run([sys.executable, "-c", probe, "--file", str(cluster.eco), "plan",
                          "sweep", PLAN, "--wait", "--json"], env=cluster.env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    st = json.loads(res.stdout)
    assert st["status"] == "succeeded" and set(st["todos"]) == {"TODO-001", "TODO-002"}, st
    line = [x for x in res.stderr.splitlines() if x.startswith("MODULES ")][-1]
    modules = set(json.loads(line[len("MODULES "):]))
    assert "coordination" in modules and "redis" in modules  # the probe saw it run
    assert not modules & {"celery", "kombu"}, sorted(modules & {"celery", "kombu"})


class _Following:
    """Has the waiting command ``pid`` made its sync's edit ready? It does so right after
    the sweep started and then waits for the sweep's events, asleep on its Redis socket:
    seen asleep for 0.2 s, nothing else between, in a poll where the kernel names the wait
    (the start's own Redis round trips last well under a millisecond; the readying is
    work, not sleep)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.since = pid, 0.0

    def __call__(self) -> bool | None:
        try:
            wchan = Path(f"/proc/{self.pid}/wchan").read_text().strip()
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        if state != "S" or wchan not in ("", "0") and "poll" not in wchan:
            self.since = 0.0
            return None
        now = time.monotonic()
        self.since = self.since or now
        return True if now - self.since >= 0.2 else None


def test_a_hand_edit_made_while_a_waited_sweep_runs_is_kept_by_its_sync(
        cluster: Cluster) -> None:
    """`plan sweep --wait` makes its sync's catalog edit ready while the sweep runs (the
    file read, cut and loaded); a hand edit of the catalog meanwhile (a comment, a plan's
    title) is still in the file after the sync, beside the sweep's outcome."""
    gate = cluster.root / "go"
    started = cluster.root / "started"
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", f"touch {started}; while [ ! -f {gate} ]; do sleep 0.05; done"),
        T("TODO-002", "b", "echo two", blocked_by=["TODO-001"])])
    cluster.start_workers(["a", "b"])
    proc = cluster.popen("plan", "sweep", PLAN, "--wait", "--json")
    wait_until(lambda: started.exists() or None, 60, "TODO-001 to start")
    wait_until(_Following(proc.pid), 30, "the waiting command to make its edit ready")
    text = cluster.eco.read_text()
    edited = re.sub(r"(?m)^(\s+title:).*$", r"\1 renamed by hand", text, count=1)
    assert edited != text
    cluster.eco.write_text(edited + "# a note written by hand while the sweep ran\n")
    gate.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["status"] == "succeeded"
    after = cluster.eco.read_text()
    assert "# a note written by hand while the sweep ran" in after, after
    assert "renamed by hand" in after, after
    cat = {t["id"]: t for t in cluster.catalog()["coordination"]["todos"]}
    assert cat["TODO-001"]["status"] == cat["TODO-002"]["status"] == "completed", cat
