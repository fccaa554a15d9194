"""Reading a fleet in forked children (coordination.fleet.forked, issues #61, #79): the
same checkouts, in the same order, as one process reads them; the parent reads beside
one child fewer than the cores; what a child that dies took is read by the parent; none
outlives the read; no fork beside running threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from coordination.fleet import discovery as d
from coordination.fleet import forked
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
           GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_NOSYSTEM="1")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, env=ENV)


def repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture(autouse=True)
def _forkable() -> None:
    """No other thread of this test process runs before a test that forks: every test
    stops what it starts (tests/unit/conftest.py fails one that does not), so this
    waits only for one that is still stopping, with a deadline."""
    wait_for(forked._forkable, timeout=10,
             what=f"other threads to end: {threading.enumerate()}")


def square(x: int) -> int:
    return x * x


def test_results_come_back_in_the_items_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "cores", lambda: 3)
    run = forked.start(square, range(50))
    assert isinstance(run, forked.Forked) and len(run.procs) == 2  # and the parent
    assert run.results() == [x * x for x in range(50)]
    assert run.procs == []
    # more items than tickets: each ticket a group of them, still in the items' order
    monkeypatch.setattr(forked, "MAX_TICKETS", 7)
    assert forked.start(square, range(50)).results() == [x * x for x in range(50)]
    # few items: the parent maps them itself
    assert isinstance(forked.start(square, range(10)), forked.Mapped)


def dies_in_a_child(x: int) -> int:
    """x + 1; in a child, the child is killed under it on its third item (the OOM
    killer), having said which items it took in FORKED_TEST_TAKEN."""
    if os.environ.get("FORKED_TEST_PARENT") != str(os.getpid()):
        taken = Path(os.environ["FORKED_TEST_TAKEN"])
        with taken.open("a") as f:
            f.write(f"{x}\n")
        if len(taken.read_text().split()) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return x + 1


def test_what_a_child_that_dies_took_is_read_by_the_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "cores", lambda: 2)
    monkeypatch.setenv("FORKED_TEST_PARENT", str(os.getpid()))
    taken = tmp_path / "taken"
    monkeypatch.setenv("FORKED_TEST_TAKEN", str(taken))
    run = forked.start(dies_in_a_child, range(40))
    # the child has died (before the parent takes any item): what it took is lost with it
    pid = run.procs[0][0]
    wait_for(lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None,
             timeout=30, what="the child to be killed")
    assert len(taken.read_text().split()) == 3
    assert run.results() == list(range(1, 41))


def test_close_leaves_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "cores", lambda: 2)
    run = forked.start(square, range(32))
    assert isinstance(run, forked.Forked)
    pids = [pid for pid, _ in run.procs]
    run.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: no such child any more
    assert run.procs == []


def test_no_fork_while_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "cores", lambda: 4)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert forked.readers_for(100) == 0
    finally:
        stop.set()
        t.join()
    assert forked.readers_for(100) == 4
    # a thread marked fork-safe (the embedded server's reaper, blocked in its child's
    # wait) does not keep the children from being forked; unmarked, the same thread does
    child = subprocess.Popen(["sleep", "30"])
    reaper = threading.Thread(target=child.wait, daemon=True)
    reaper.start()
    try:
        assert forked.readers_for(100) == 0
        setattr(reaper, forked.FORK_SAFE, True)
        assert forked.readers_for(100) == 4
    finally:
        child.kill()
        reaper.join()
    # an idle daemon timer (the CLI's, that turns the garbage collector back on) holds
    # nothing a child would wait on
    timer = threading.Timer(60, lambda: None)
    timer.daemon = True
    timer.start()
    try:
        assert forked.readers_for(100) == 4
    finally:
        timer.cancel()
        timer.join()


def test_a_fleet_read_in_children_is_the_fleet_read_in_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "src"
    for i in range(20):
        co = repo(root / f"team-{i % 3}" / f"svc-{i:02d}")
        (co / "package.json").write_text(f'{{"name": "svc-{i}", "dependencies": '
                                          f'{{"svc-{max(i - 1, 0)}": "1"}}}}\n')
    a = root / "team-0" / "svc-00"
    (a / ".gitignore").write_text("vendor/\n")
    git(a, "add", "-A")
    git(a, "commit", "-q", "-m", "first")
    repo(a / "vendor")  # ignored: never found
    nested = repo(a / "helper")  # found below svc-00, by the child reading it
    git(a, "worktree", "add", "-q", str(root / "team-0" / "wt"), "-b", "x")  # .git file
    monkeypatch.setattr(forked, "cores", lambda: 3)
    started = d.Discovery.start([root], 3)
    assert isinstance(started.running, forked.Forked)
    in_children = started.checkouts()
    monkeypatch.setattr(forked, "cores", lambda: 1)
    alone = d.discover([root], 3)
    assert [c.path for c in in_children] == [c.path for c in alone] == \
        d.find_checkouts([root], 3)
    assert nested in [c.path for c in in_children]
    assert a / "vendor" not in [c.path for c in in_children]
    assert [(c.path, c.manifests.provides, c.manifests.requires) for c in in_children] == \
        [(c.path, c.manifests.provides, c.manifests.requires) for c in alone]


def test_the_readers_of_the_builds_at_the_tops_are_imported_before_the_fork(
        tmp_path: Path) -> None:
    """Once in the parent, not in every reader: the reader of a build the walk saw at a
    checkout's top (sbt here) is imported by Discovery.start, before any child forks;
    one the fleet holds no build of (Gradle) is not imported at all."""
    root = tmp_path / "src"
    for i in range(3):
        (repo(root / f"scala-{i}") / "build.sbt").write_text('name := "x"\n')
    probe = ("import sys; from pathlib import Path; "
             "from coordination.fleet import discovery as d, forked; "
             "forked.cores = lambda: 1; "  # no child: what is imported is the parent's
             f"found = d.Discovery.start([Path({str(root)!r})], 3); "
             "print('coordination.fleet.manifests.sbt' in sys.modules, "
             "'coordination.fleet.manifests.gradle' in sys.modules); found.close()")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.split() == ["True", "False"]
