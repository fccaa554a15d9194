"""The fork server of `coord` commands (tests/clifork.py) gives what a fresh process
gives: exit code, stdout, stderr, the environment and working directory asked for, and
a timeout that kills; and calls it cannot serve as a fresh process would run afresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests import clifork
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

COORD = [sys.executable, "-m", clifork.MAIN]


@pytest.fixture
def server() -> Iterator[clifork.Server]:
    s = clifork.Server()
    try:
        yield s
    finally:
        s.close()


def both(server: clifork.Server, args: list[str], **kw: object) -> tuple[
        subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    real = subprocess.Popen(COORD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)  # type: ignore[call-overload]
    out, err = real.communicate(timeout=60)
    forked = server.run(COORD + args, capture_output=True, text=True, timeout=60, **kw)  # type: ignore[arg-type]
    return subprocess.CompletedProcess(COORD + args, real.returncode, out, err), forked


def test_a_command_reads_the_same_and_exits_the_same(server: clifork.Server,
                                                     example_catalog: Path) -> None:
    codes: dict[str, int] = {}
    for name, args in (("list", ["--file", str(example_catalog), "todo", "list", "--json"]),
                       ("refusal", ["--file", str(example_catalog), "todo", "show", "TODO-404"]),
                       ("unknown", ["--file", str(example_catalog), "no-such-command"])):
        real, forked = both(server, args)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            real.returncode, real.stdout, real.stderr), args
        codes[name] = real.returncode
    assert codes["refusal"] == 2


def test_its_environment_and_directory_are_the_ones_asked_for(
        server: clifork.Server, example_catalog: Path, tmp_path: Path) -> None:
    # --file relative to the directory asked for; a setting from the environment asked for
    env = {"PATH": "/usr/bin:/bin", "COORD_NAMESPACE": "not a namespace!"}
    real, forked = both(server, ["--file", example_catalog.name, "todo", "list", "--json"],
                        cwd=example_catalog.parent, env=env)
    assert forked.returncode == real.returncode
    assert forked.stderr == real.stderr and forked.stdout == real.stdout


def test_input_reaches_its_stdin(server: clifork.Server, example_catalog: Path) -> None:
    args = COORD + ["--file", str(example_catalog), "todo", "list", "--json"]
    got = server.run(args, input="ignored\n", capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and got.stdout.startswith("[")


def test_a_timeout_kills_it_and_says_so(server: clifork.Server, example_catalog: Path) -> None:
    import psutil

    before = {p.pid for p in psutil.Process(server.proc.pid).children()}
    with pytest.raises(subprocess.TimeoutExpired):  # (no command ends in 10 ms)
        server.run(COORD + ["--file", str(example_catalog), "todo", "list"],
                   capture_output=True, text=True, timeout=0.01)
    left = {p.pid for p in psutil.Process(server.proc.pid).children()
            if p.status() != psutil.STATUS_ZOMBIE} - before
    assert not left, f"the timed-out command still runs: {left}"


def test_a_capped_command_gets_no_more_memory_than_its_cap(server: clifork.Server,
                                                          example_catalog: Path) -> None:
    args = COORD + ["--file", str(example_catalog), "todo", "list", "--json"]
    roomy = server.run(args, capture_output=True, text=True, timeout=60, limit_as=1 << 30)
    assert roomy.returncode == 0, roomy.stderr
    # a cap below what the server's imports already take: the command's first large
    # allocation (a thread's stack, a buffer) fails, as a capped fresh process's does
    tight = server.run(args, capture_output=True, text=True, timeout=60, limit_as=16 << 20)
    assert tight.returncode != 0, tight.stdout
    assert "MemoryError" in tight.stderr or "can't start new thread" in tight.stderr, (
        tight.stderr[-2000:])


def test_calls_a_fork_cannot_serve_are_not_routed() -> None:
    assert clifork.routed(COORD + ["todo", "list"], {"capture_output": True, "text": True})
    assert not clifork.routed(COORD + ["todo", "list"], {"start_new_session": True})
    assert not clifork.routed(COORD + ["todo", "list"], {"preexec_fn": print})
    assert not clifork.routed([sys.executable, "-c", "print(1)"], {})
    assert clifork._python_env({"PYTHONHASHSEED": "1"}) != clifork._python_env({})
    assert not clifork._same_path({"PYTHONPATH": "/somewhere/else"})
    assert clifork._same_path({"PYTHONPATH": str(clifork.ROOT)})


def test_a_forked_commands_own_coord_commands_go_to_its_server(
        server: clifork.Server, example_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a forked command has routed (:func:`clifork.route`, as the server does in each
    child): its coord commands to the server's socket, reading as a fresh one; others not."""
    sent: list[tuple[str, list[str]]] = []
    real_run = clifork.Client.run

    def spy(self: clifork.Client, argv: list[str], **kw: Any) -> Any:
        sent.append((self.path, argv))
        return real_run(self, argv, **kw)

    monkeypatch.setattr(clifork.Client, "run", spy)
    args = ["--file", str(example_catalog), "todo", "list", "--json"]
    fresh = subprocess.Popen(COORD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    out, err = fresh.communicate(timeout=60)
    undo = clifork.route(clifork.Client(server.path, server.python_env, server.paths))
    try:
        got = subprocess.run(COORD + args, capture_output=True, text=True, timeout=60)
        other = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True,
                               text=True, timeout=60)
        elsewhere = subprocess.run(COORD + args, capture_output=True, text=True, timeout=60,
                                   env={**os.environ, "PYTHONHASHSEED": "7"})
    finally:
        undo()
    assert sent == [(server.path, COORD + args)]  # only the one a fork can serve as it is
    assert (got.returncode, got.stdout, got.stderr) == (fresh.returncode, out, err)
    assert other.stdout == "1\n" and elsewhere.stdout == out


# -- a `coord worker` forked from the workers' server (clifork.popen) ----------------------

def _worker(start: Callable[..., Any], tmp: Path, url: str, name: str) -> tuple[Any, Path]:
    """`coord worker --repo a` started by ``start`` (a Popen, or a server's spawn), once
    it says it is ready: the process and its log."""
    (tmp / "a").mkdir(exist_ok=True)
    catalog = tmp / "ecosystem.yaml"
    catalog.write_text("version: 1\nrepos:\n  - name: a\n    path: a\n")
    log = tmp / f"{name}.log"
    env = {**os.environ, "COORD_REDIS_URL": url, "COORD_NAMESPACE": f"clifork_{name}_{uuid.uuid4().hex[:8]}"}
    with open(log, "wb") as fh:
        proc = start(COORD + ["--file", str(catalog), "worker", "--repo", "a", "--loglevel",
                              "INFO"], cwd=clifork.ROOT, env=env, stdin=subprocess.DEVNULL,
                     stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: " ready." in log.read_text(errors="replace")
                 or proc.poll() is not None, timeout=60, what=f"the {name} worker")
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
    except BaseException:
        proc.kill()
        proc.wait(timeout=30)
        raise
    return proc, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_forked_worker_is_a_process_of_its_own_and_ends_as_a_fresh_one_does(
        sig: int, tmp_path: Path, redis_server: Any) -> None:
    workers = clifork.Server("WORKER_PRELOAD")
    try:
        def spawn(argv: list[str], *, start_new_session: bool, **kw: Any) -> Any:
            return workers.spawn(argv, session=start_new_session, **kw)

        codes = {}
        for name, start in (("fresh", subprocess.Popen), ("forked", spawn)):
            proc, log = _worker(start, tmp_path, redis_server.url, name)
            try:
                # its own session and group (killpg reaches it and what it forks), alive
                assert os.getsid(proc.pid) == proc.pid == os.getpgid(proc.pid)
                assert proc.poll() is None
                with pytest.raises(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
                proc.send_signal(sig)
                codes[name] = proc.wait(timeout=60)
            finally:
                proc.kill()
                proc.wait(timeout=30)
            if name == "forked":  # the server's child, not this process's
                assert psutil.Process(workers.proc.pid).is_running()
        assert codes["forked"] == codes["fresh"], codes
        assert codes["fresh"] == (0 if sig == signal.SIGTERM else -signal.SIGKILL), codes
    finally:
        workers.close()


def test_a_worker_a_fork_cannot_serve_is_a_real_process(tmp_path: Path) -> None:
    # (a pipe to its stdin: a fork's handle writes none; another interpreter: not the server's)
    for argv, kw in ((COORD + ["--version"], {"stdin": subprocess.PIPE}),
                     ([sys.executable, "-c", "print(1)"], {"stdout": subprocess.PIPE})):
        proc = clifork.popen(argv, **kw)
        try:
            assert isinstance(proc, subprocess.Popen)
        finally:
            proc.communicate(timeout=60)


def test_a_forked_process_s_pipes_read_as_a_fresh_one_s(server: clifork.Server,
                                                        example_catalog: Path) -> None:
    def fork(argv: list[str], **kw: Any) -> clifork.ForkedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return server.spawn(argv, cwd=None, env=None, session=False, **kw)

    args = ["--file", str(example_catalog), "todo", "show", "TODO-404"]  # exit 2, stderr
    listing = ["--file", str(example_catalog), "todo", "list", "--json"]
    got = {}
    for name, start in (("fresh", subprocess.Popen), ("forked", fork)):
        proc = start(COORD + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=60)
        got[name] = (proc.returncode, out, err)
        proc = start(COORD + listing, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        first = proc.stdout.readline()  # read line by line, as a follower is
        proc.communicate(timeout=60)
        got[name + " line"] = (proc.returncode, first, None)
    assert got["forked"] == got["fresh"] and got["fresh"][0] == 2, got
    assert got["forked line"] == got["fresh line"] and got["fresh line"][1], got
