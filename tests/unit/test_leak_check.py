"""The unit tier's leak check (``_nothing_left_behind`` in tests/unit/conftest.py) fails
a test that leaves a thread or a child process running, names it, and passes one that
stops what it started, or that joined an embedded server (released as a CLI process
releases it when it exits).

The probes below are not collected by the tier (their names start with ``probe_``):
this module's test runs them in a pytest of their own (``-o python_functions=probe_*``)
and reads its verdicts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PIDS = "LEAK_PROBE_PIDS"  # not COORD_*: the test environment clears those


def probe_leaves_a_thread() -> None:
    never = threading.Event()
    threading.Thread(target=never.wait, name="leaky-probe", daemon=True).start()


def probe_leaves_a_child() -> None:
    proc = subprocess.Popen(["sleep", "120"])
    with open(os.environ[PIDS], "a") as fh:
        fh.write(f"{proc.pid}\n")


def probe_stops_its_thread_and_child() -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="tidy-probe", daemon=True)
    t.start()
    proc = subprocess.Popen(["sleep", "120"])
    stop.set()
    t.join(10)
    proc.kill()
    proc.wait(10)


def probe_joins_an_embedded_server(tmp_path: Path) -> None:
    from coordination.connection import embedded_server

    (tmp_path / "ecosystem.yaml").write_text("")
    url = embedded_server.ensure_server(tmp_path / "ecosystem.yaml")
    assert url in embedded_server.joined()


def test_the_leak_check_fails_what_leaves_a_thread_or_a_child_and_passes_the_rest(
        tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.touch()
    env = {k: v for k, v in os.environ.items()
           if k not in ("COORD_TESTS_LEFT_REPORT", "PYTEST_XDIST_WORKER",
                        "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    env[PIDS] = str(pids)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
             "-o", "python_functions=probe_*", "-q", "-rA", "--basetemp", str(tmp_path / "bt"),
             str(Path(__file__).relative_to(ROOT))],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    finally:
        for pid in pids.read_text().split():
            try:
                psutil.Process(int(pid)).kill()
            except psutil.Error:
                pass
    out = res.stdout + res.stderr
    # A leak fails the test in its teardown: pytest says ERROR (after its call PASSED).
    verdicts = {(name, verdict) for verdict, name in
                re.findall(r"^(PASSED|FAILED|ERROR) \S+::(probe_\w+)", out, re.M)}
    assert verdicts == {("probe_leaves_a_thread", "PASSED"), ("probe_leaves_a_thread", "ERROR"),
                        ("probe_leaves_a_child", "PASSED"), ("probe_leaves_a_child", "ERROR"),
                        ("probe_stops_its_thread_and_child", "PASSED"),
                        ("probe_joins_an_embedded_server", "PASSED")}, out[-4000:]
    assert "left running after it: thread 'leaky-probe'" in out, out[-4000:]
    assert re.search(r"probe_leaves_a_child left running after it: process \d+: sleep 120",
                     out), out[-4000:]
    assert res.returncode == 1, out[-4000:]
