"""The CLI's start-up without the cyclic collector (coordination.cli.main.pause_gc).

It is a speed measure (see bench/sweep.py's reads part), so what is tested here is
that it costs nothing else: a process that lives on gets the collector back and
collects cycles again, output written at exit is whole, and a forked child collects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=50, check=False)


def test_a_long_lived_process_collects_cycles_again() -> None:
    out = run("""
        import gc, json, time, weakref
        from coordination.cli.main import pause_gc

        pause_gc(0.2)
        paused = gc.isenabled()

        class Node:
            pass

        # a cycle made after the pause ends is collected by the collector on its own
        deadline = time.monotonic() + 20
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
        while ref() is not None and time.monotonic() < deadline:
            [[] for _ in range(1000)]  # allocations drive the generational collector
        print(json.dumps({"paused": paused, "enabled": gc.isenabled(),
                          "collected": ref() is None}))
    """)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"paused": False, "enabled": True, "collected": True}


def test_output_at_exit_is_whole_while_paused(tmp_path) -> None:
    # exits long before the pause ends: the freeze at exit must not lose buffered output,
    # on stdout nor in a file left open (flushed when the interpreter lets go of it)
    path = tmp_path / "left-open.txt"
    out = run(f"""
        import sys
        from coordination.cli.main import pause_gc

        pause_gc(60)
        sys.stdout.write("x" * 200_000)
        left_open = open({str(path)!r}, "w")
        left_open.write("y" * 100_000)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "x" * 200_000
    assert path.read_text() == "y" * 100_000


def test_a_forked_child_collects() -> None:
    out = run("""
        import gc, os
        from coordination.cli.main import pause_gc

        pause_gc(60)
        assert not gc.isenabled()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gc.isenabled() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_coord_runs_with_the_pause(tmp_path) -> None:
    # the console script's path: the pause is on, and a command's output is whole
    catalog = tmp_path / "ecosystem.yaml"
    catalog.write_text("version: 1\nrepos:\n  - name: api\n    path: api\n")
    out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                          "repo", "list", "--json"], capture_output=True, text=True,
                         timeout=50, check=False)
    assert out.returncode == 0, out.stderr
    assert [r["name"] for r in json.loads(out.stdout)] == ["api"]
