"""Every shell example of the tutorials runs (docs/tutorials/*.md; see tests/docs/examples.py).

Each tutorial's ```sh blocks run in order in one bash with ``set -e``, in a fresh
directory and home, with the venv's `coord` on PATH and no COORD_* setting inherited:
embedded sweeps by default, a private redis-server (on a unix socket) where the tutorial
starts one (the pull-request tutorial: the test forge of tests/forges/, from ``~/coord``,
this repository). A command that says it fails (``# exit N``) must end with that status, and
each output block (``<!-- output -->``) must be what its command printed, but for the
parts that differ from run to run. A renamed command or flag, a changed default, an
example that no longer works, an output that drifted fails here, not in a reader's
terminal. The parsing itself is tested in tests/unit/test_docs_examples_parser.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.docs.examples import ROOT, TUTORIALS, compare, outputs, script
from tests.servers import term_then_kill

PAGES = sorted(TUTORIALS.glob("*.md"))
#: A tutorial run again on other kinds of forge (the test forge of tests/forges/ is each
#: of them): what it says of GitHub, said of that forge.
ON_FORGES = {"change-through-pull-requests": {
    kind: [("start github", f"start {kind}"), ("kind: github", f"kind: {kind}"),
           ('api: "http://127.0.0.1:8801"', f'api: "http://127.0.0.1:8801{prefix}"'),
           ("/hooks/github", f"/hooks/{kind}")]
    for kind, prefix in (("gitlab", "/api/v4"), ("gitea", "/api/v1"))}}
RUNS = [(page, kind) for page in PAGES
        for kind in [None, *ON_FORGES.get(page.stem, {})]]


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
        PYTHONUNBUFFERED="1",  # stdout and stderr interleaved as in a terminal
        PYTHONFAULTHANDLER="1",  # stacks on SIGABRT, should a tutorial hang (see below)
    )
    return env


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("page", "forge"), RUNS,
                         ids=[p.stem + (f"-on-{k}" if k else "") for p, k in RUNS])
def test_tutorial_runs(page: Path, forge: str | None, tmp_path: Path) -> None:
    # A short home: a tutorial's directories are under ~/coord-tutorial, and a unix
    # socket's path (redis.sock there) may hold at most 107 bytes.
    short = Path(tempfile.mkdtemp(prefix="cdocs-"))
    try:
        _run_tutorial(page, tmp_path, short / "home", forge)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _run_tutorial(page: Path, tmp_path: Path, home: Path, forge: str | None = None) -> None:
    text = script(page)
    for said, instead in ON_FORGES.get(page.stem, {}).get(forge or "", []):
        assert said in text, f"{page.name} no longer says {said!r}: update ON_FORGES"
        text = text.replace(said, instead)
    for tool in ("redis-server", "redis-cli"):
        if tool in text and shutil.which(tool) is None:
            if os.environ.get("COORD_REQUIRE_REDIS") == "1":
                pytest.fail(f"{tool} is not on PATH (COORD_REQUIRE_REDIS=1)")
            pytest.skip(f"{tool} is not on PATH")
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    # A tutorial that runs a script of coord's own repository (the test forge of
    # change-through-pull-requests.md) takes the reader's clone to be at ~/coord.
    (home / "coord").symlink_to(ROOT)
    work = tmp_path / "work"
    work.mkdir()
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    env = _env(home)
    env["COORD_DOCS_OUT"] = str(out_dir)
    (tmp_path / "tutorial.sh").write_text(text)
    # Its own process group: what the tutorial starts in the background (a redis-server,
    # workers) is stopped with it, whatever happened. Output to a file, not a pipe: a
    # background process holding the pipe would keep a reader waiting after bash ended.
    log = tmp_path / "tutorial.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(tmp_path / "tutorial.sh")], cwd=work,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
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
    drifted = []
    for o in outputs(page):
        diff = compare(o.expected, (out_dir / o.file).read_text(errors="replace"),
                       home=str(home), columns=o.columns)
        if diff:
            drifted.append(f"{o.page}:{o.line}: the output block is not what its command "
                           "printed:\n" + "\n".join(diff))
    assert not drifted, "\n\n".join(drifted)


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
    term_then_kill(pgid, group=True, grace=10, poll=0.1)
