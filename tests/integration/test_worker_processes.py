"""A worker of several repos forks a worker process per share of them (issue #64): it is
still one worker to `coord workers`, to its signals and to its todos' guarantees.

Real `coord worker` processes on the session's redis-server: the processes are found
with psutil (the parent's children), the todos' runs by the files they write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.integration.helpers import Cluster, T, Worker, read_lines, todo_processes, wait_until
from workers.execute import GUARD_ENV

# (a worker's SIGHUP re-executes its command line, which a forked one does not have)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.fresh_workers]

# Long enough that a signal lands while it runs; the markers show it ran once, to the end.
RUN = "echo start >> $COORD_TODO_ID.log; sleep 2; echo end >> $COORD_TODO_ID.log"
REPOS = {"a": 1, "b": 1, "c": 1}


def start(cluster: Cluster, processes: int = 2, extra: tuple[str, ...] = ()) -> Worker:
    """`coord worker --repo a --repo b --repo c --processes N`, once it says it is ready."""
    return cluster.start_worker("a", extra=("--repo", "b", "--repo", "c",
                                            "--processes", str(processes), *extra))


def processes_of(w: Worker) -> list[psutil.Process]:
    """The worker processes the parent forked (its direct children: no todo runs there)."""
    return [p for p in psutil.Process(w.pid).children() if "coord" in " ".join(p.cmdline())]


def test_one_worker_to_coord_workers_its_repos_served_by_its_processes(cluster: Cluster) -> None:
    cluster.write_catalog(REPOS, [T(f"TODO-00{i}", repo, "echo $$ > $COORD_TODO_ID.pid")
                                  for i, repo in enumerate("abc", start=1)])
    w = start(cluster)
    # "ready." comes once every process beats: `coord workers` lists the one worker whole.
    assert w.log_text().count(" ready.") == 1, w.log_text()[-3000:]
    [doc] = cluster.cli_json("workers")
    assert (doc["pid"], doc["processes"], sorted(doc["repos"])) == (w.pid, 2, ["a", "b", "c"])
    assert doc["name"].startswith(f"a+b+c-{w.pid}@")
    kids = processes_of(w)
    assert len(kids) == 2 and all(p.pid != w.pid for p in kids)
    records = cluster.rt.workers.live()
    assert sorted(r.pid for r in records) == sorted(p.pid for p in kids)
    assert sorted(len(r.repos) for r in records) == [1, 2]  # the shares: a+c (busiest first), b
    st = cluster.wait_sweep(cluster.start_sweep())
    assert st["status"] == "succeeded", st
    by_pid = {r.pid: r for r in records}
    for todo, cp in st["todos"].items():  # each ran in the process serving its repo
        owner = next(r for r in records if cp["worker"] == r.name)
        assert cp["repo"] in owner.repos and owner.pid in by_pid, (todo, cp)
    # Their todos' warden: one, the parent's, for both processes (not one each).
    wardens = [p for p in psutil.Process(w.pid).children(recursive=True)
               if GUARD_ENV in p.cmdline()]
    assert [p.ppid() for p in wardens] == [w.pid], [(p.pid, p.ppid()) for p in wardens]
    # Several repos over one process, as before, when asked for.
    w.kill()
    w1 = start(cluster, processes=1)
    # (the killed worker's records are listed until their liveness expires: no process
    # killed -9 takes its own out)
    [doc] = [d for d in cluster.cli_json("workers") if d["pid"] == w1.pid]
    assert doc["processes"] == 1 and not processes_of(w1)
    assert sorted(doc["repos"]) == ["a", "b", "c"]


def test_sigterm_stops_every_process_warm_and_the_worker_exits_0(cluster: Cluster) -> None:
    cluster.write_catalog(REPOS, [T("TODO-001", "a", RUN), T("TODO-002", "b", RUN)])
    w = start(cluster)
    sid = cluster.start_sweep()
    for todo in ("TODO-001", "TODO-002"):
        cluster.wait_todo(sid, todo, {"running"})
    kids = processes_of(w)
    # each serves its todos' `coord context` on a socket of its own (workers/context_proxy.py)
    # from before their commands start
    wait_until(lambda: all((cluster.repo_dir(r) / f"{t}.log").exists()
                           for t, r in (("TODO-001", "a"), ("TODO-002", "b"))) or None, 20,
               "both commands started")
    ctx = Path(tempfile.gettempdir()) / f"coord-ctx-{os.getuid()}"
    socks = [ctx / f"{p.pid}.sock" for p in kids]
    assert all(s.exists() for s in socks), socks
    w.signal(signal.SIGTERM)  # to the parent only: it forwards the signal, once
    wait_until(lambda: all(d["stopping"] for d in cluster.cli_json("workers")) or None, 20,
               "the worker listed as stopping")
    try:
        code = w.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker did not exit within 30 s of SIGTERM:\n{w.log_text()[-3000:]}")
    assert code == 0, w.log_text()[-3000:]
    assert not [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # a forked process ends by os._exit (no exit handler): it removed its socket itself
    assert not [s for s in socks if s.exists()]
    for todo, repo in (("TODO-001", "a"), ("TODO-002", "b")):  # both finished, once
        assert read_lines(cluster.repo_dir(repo) / f"{todo}.log") == ["start", "end"]
    st = cluster.wait_sweep(sid, timeout=20)
    assert st["status"] == "succeeded", st
    assert all(t["attempts"] == 1 for t in st["todos"].values()), st
    assert w.log_text().count("Warm shutdown") == 2, w.log_text()[-3000:]
    assert cluster.rt.workers.live() == []  # every process left the list as it exited


def test_a_process_that_dies_is_started_again_and_its_todo_runs_again(cluster: Cluster) -> None:
    cluster.write_catalog(REPOS, [T("TODO-001", "b", RUN)])
    w = start(cluster)
    sid = cluster.start_sweep()
    cp = cluster.wait_todo(sid, "TODO-001", {"running"})
    [holder] = [r for r in cluster.rt.workers.live() if r.name == cp["worker"]]
    psutil.Process(holder.pid).kill()  # the OOM killer, say
    # Its todo's process group goes with it (its warden), and the worker goes on.
    wait_until(lambda: not todo_processes(sid, "TODO-001"), 10, "the todo's processes killed")
    again = wait_until(lambda: [r for r in cluster.rt.workers.live()
                                if "b" in r.repos and r.pid != holder.pid], 20,
                       "a new process serving b")
    st = cluster.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded", st
    todo = st["todos"]["TODO-001"]
    assert todo["worker"] == again[0].name, todo
    assert w.alive() and "starting it again" in w.log_text()
    assert len(processes_of(w)) == 2


def test_sighup_restarts_the_worker_as_celery_restarts_one(cluster: Cluster) -> None:
    """Detached from a terminal, SIGHUP is Celery's restart: its processes stop warm,
    then the same command line runs again, in the same process (as Celery's exec)."""
    cluster.write_catalog(REPOS, [T("TODO-001", "c", "true")])
    w = start(cluster)
    before = {p.pid for p in processes_of(w)}
    w.signal(signal.SIGHUP)
    wait_until(lambda: w.log_text().count(" ready.") == 2 or None, 60, "ready again")
    assert w.alive() and "restarting (SIGHUP)" in w.log_text()
    after = {p.pid for p in processes_of(w)}
    assert len(after) == 2 and not after & before
    [doc] = cluster.cli_json("workers")
    assert doc["pid"] == w.pid and doc["processes"] == 2
    st = cluster.wait_sweep(cluster.start_sweep())
    assert st["status"] == "succeeded", st


# Long on its first run only: the run after a lost one ends at once.
ONCE_LONG = "[ -e $COORD_TODO_ID.ran ] && exit 0; touch $COORD_TODO_ID.ran; sleep 60"


def test_the_worker_killed_takes_its_processes_and_their_todos_with_it(cluster: Cluster) -> None:
    cluster.write_catalog(REPOS, [T("TODO-001", "a", ONCE_LONG)])
    w = start(cluster)
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    kids = processes_of(w)
    wait_until(lambda: todo_processes(sid, "TODO-001"), 10, "the todo's processes")
    w.proc.send_signal(signal.SIGKILL)  # the parent only (Worker.kill kills its group)
    w.proc.wait(timeout=10)
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                               for p in kids) or None, 10, "its processes to die with it")
    wait_until(lambda: not todo_processes(sid, "TODO-001"), 10, "the todo's processes killed")
    # The run is lost, as a killed worker's: it runs again on the next worker, once.
    w2 = cluster.start_worker("a")
    st = cluster.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded", st
    assert st["todos"]["TODO-001"]["worker"].startswith(w2.hostname_prefix), st


def test_processes_apply_to_a_worker_of_several_repos(cluster: Cluster) -> None:
    cluster.write_catalog(REPOS, [T("TODO-001", "a", "true")])
    r = cluster.cli("worker", "--repo", "a", "--processes", "2")
    assert r.returncode == 2 and "--processes applies to a worker of several repos" in r.stderr
    r = cluster.cli("worker", "--repo", "a", "--repo", "b", "--processes", "0")
    assert r.returncode == 2 and "--processes" in r.stderr


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_started_process_never_loads_what_its_processes_run(cluster: Cluster) -> None:
    """The process a person starts forks a starter before the CLI loads (workers/starter.py):
    the starter forks the worker processes and ends, so that no process keeps the image
    they were forked from (the pages both write would be held three times). The started
    one supervises them with a bare interpreter's image: none of the catalog's, Celery's
    or Redis's extension modules is mapped in it, while each of its processes maps them."""
    cluster.write_catalog(REPOS, [T("TODO-001", "b", RUN)])
    w = start(cluster)
    kids = processes_of(w)
    assert len(kids) == 2 and all(p.ppid() == w.pid for p in kids)
    for lib in ("_pydantic_core", "hiredis"):
        assert all(lib in _maps(p.pid) for p in kids), lib  # (what the check looks for)
        assert lib not in _maps(w.pid), f"the started process loaded {lib}"
    # No starter left: its processes and their warden are the started process's children.
    assert {p.pid for p in psutil.Process(w.pid).children()} == (
        {p.pid for p in kids} | {p.pid for p in psutil.Process(w.pid).children()
                                 if GUARD_ENV in p.cmdline()})
    # A process started again after a death is forked from the started one, and loads
    # what it runs itself: then it maps them, the started one still does not.
    sid = cluster.start_sweep()
    cp = cluster.wait_todo(sid, "TODO-001", {"running"})
    [holder] = [r for r in cluster.rt.workers.live() if r.name == cp["worker"]]
    psutil.Process(holder.pid).kill()
    again = wait_until(lambda: [r for r in cluster.rt.workers.live()
                                if "b" in r.repos and r.pid != holder.pid], 30,
                       "a new process serving b")
    assert psutil.Process(again[0].pid).ppid() == w.pid
    assert "_pydantic_core" in _maps(again[0].pid) and "_pydantic_core" not in _maps(w.pid)
    st = cluster.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded", st


def test_a_worker_that_cannot_start_exits_as_the_cli_does(cluster: Cluster) -> None:
    """Its starter's refusal is the worker's: the message once, the exit code, nothing
    left running."""
    cluster.write_catalog(REPOS, [T("TODO-001", "a", "true")])
    r = cluster.cli("worker", "--repo", "a", "--repo", "nope", timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("unknown repo 'nope'") == 1, r.stderr
    r = cluster.cli("worker", "--repo", "a", "--repo", "b", "--path", "b=/no/such/dir",
                    timeout=60)
    assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr


def test_a_selector_of_one_repo_is_served_by_the_started_process(cluster: Cluster) -> None:
    """`--repos SELECTOR` may select one repo: the starter says so and the process the
    person started runs that worker itself, as any worker of one repo."""
    cluster.write_catalog(REPOS, [T("TODO-001", "a", "true")])
    w = cluster.start_worker("a", extra=("--repos", "a"))  # the same repo twice: one
    [doc] = cluster.cli_json("workers")
    assert doc["pid"] == w.pid and doc.get("processes", 1) == 1, doc
    assert not processes_of(w)
    assert "_pydantic_core" in _maps(w.pid)  # it runs the worker itself
    st = cluster.wait_sweep(cluster.start_sweep())
    assert st["status"] == "succeeded", st
