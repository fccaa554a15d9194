"""The fork server of `coord` commands (tests/clifork.py) gives what a fresh process
gives: exit code, stdout, stderr, the environment and working directory asked for, and
a timeout that kills; and calls it cannot serve as a fresh process would run afresh."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import clifork

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


def test_calls_a_fork_cannot_serve_are_not_routed() -> None:
    assert clifork.routed(COORD + ["todo", "list"], {"capture_output": True, "text": True})
    assert not clifork.routed(COORD + ["todo", "list"], {"start_new_session": True})
    assert not clifork.routed(COORD + ["todo", "list"], {"preexec_fn": print})
    assert not clifork.routed([sys.executable, "-c", "print(1)"], {})
    assert clifork._python_env({"PYTHONHASHSEED": "1"}) != clifork._python_env({})
    assert not clifork._same_path({"PYTHONPATH": "/somewhere/else"})
    assert clifork._same_path({"PYTHONPATH": str(clifork.ROOT)})
