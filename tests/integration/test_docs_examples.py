"""Every shell example of the tutorials runs (docs/tutorials/*.md; see tests/docs/examples.py).

Each tutorial's ```sh blocks run in order in one bash with ``set -e``, in a fresh
directory, with the venv's `coord` on PATH and no COORD_* setting inherited: embedded
sweeps by default, a private redis-server (on a unix socket) where the tutorial starts
one. A renamed command or flag, a changed default, an example that no longer works
fails here, not in a reader's terminal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.docs.examples import TUTORIALS, problems, script

PAGES = sorted(TUTORIALS.glob("*.md"))


@pytest.mark.timeout(30)
def test_there_are_tutorials() -> None:
    assert len(PAGES) >= 5, PAGES


@pytest.mark.timeout(30)
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_shell_example_is_run(page: Path) -> None:
    assert problems(page) == []


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COORD_", "GIT_"))}
    bin_dir = str(Path(sys.executable).parent)  # the venv's coord
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
        GIT_AUTHOR_NAME="Docs Reader", GIT_AUTHOR_EMAIL="reader@example.com",
        GIT_COMMITTER_NAME="Docs Reader", GIT_COMMITTER_EMAIL="reader@example.com",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"), GIT_CONFIG_NOSYSTEM="1",
        COORD_USER="reader@example.com",
        PYTHONFAULTHANDLER="1",  # stacks on SIGABRT, should a tutorial hang (see below)
    )
    return env


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs(page: Path, tmp_path: Path) -> None:
    text = script(page)
    for tool in ("redis-server", "redis-cli"):
        if tool in text and shutil.which(tool) is None:
            if os.environ.get("COORD_REQUIRE_REDIS") == "1":
                pytest.fail(f"{tool} is not on PATH (COORD_REQUIRE_REDIS=1)")
            pytest.skip(f"{tool} is not on PATH")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "tutorial.sh").write_text(text)
    # Its own process group: what the tutorial starts in the background (a redis-server,
    # workers) is stopped with it, whatever happened. Output to a file, not a pipe: a
    # background process holding the pipe would keep a reader waiting after bash ended.
    log = tmp_path / "tutorial.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(tmp_path / "tutorial.sh")], cwd=work,
                                env=_env(home), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            # Where was it stuck? Every Python process of the tutorial writes its threads'
            # stacks into the log on SIGABRT (PYTHONFAULTHANDLER, set in _env).
            _abort_group(proc.pid)
            proc.kill()
            proc.wait()
            pytest.fail(f"{page.name} did not finish in 240 s:\n{_tail(log, 30000)}")
        finally:
            _stop_group(proc.pid)
    assert proc.returncode == 0, f"{page.name} failed (exit {proc.returncode}):\n{_tail(log)}"


def _tail(log: Path, size: int = 6000) -> str:
    return log.read_text(errors="replace")[-size:]


def _abort_group(pgid: int) -> None:
    """SIGABRT to every process of the group but bash: each Python one writes its
    threads' stacks into the log, then ends; wait (5 s at most) for them to end."""
    aborted = []
    for p in psutil.process_iter(["name"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["name"] != "bash":
                p.send_signal(signal.SIGABRT)
                aborted.append(p)
        except (ProcessLookupError, psutil.Error):
            continue
    psutil.wait_procs(aborted, timeout=5)


def _stop_group(pgid: int) -> None:
    """SIGTERM what the tutorial left running (workers shut down warm), then SIGKILL
    whatever is still there after 10 s."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
