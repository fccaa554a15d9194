"""`coord init --from FILE` with clone URLs, on real git with bare repos as the remotes:
two repositories of one name both cloned and both in the catalog (never one taken for
the other), what stands in a clone's way refused before anything is cloned, and a
refused, failed or interrupted `--from` leaving no clone behind (issue #61)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from tests.integration.change_repos import git, remote_with
from tests.integration.init_cli import ROOT, coord, coord_json
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def bare(tmp: Path, owner: str, name: str, files: dict[str, str]) -> Path:
    """A bare repository at ``tmp/git/OWNER/NAME.git`` holding ``files``."""
    made = remote_with(tmp / "seeds" / owner, name, files)
    dest = tmp / "git" / owner / f"{name}.git"
    dest.parent.mkdir(parents=True, exist_ok=True)
    made.rename(dest)
    return dest


def listing(tmp: Path, *lines: str) -> Path:
    f = tmp / "repos.txt"
    f.write_text("".join(f"{line}\n" for line in lines))
    return f


def left_in(into: Path) -> list[str]:
    """What is under ``into`` (hidden staging directories too)."""
    return sorted(p.name for p in into.iterdir()) if into.exists() else []


@pytest.fixture
def utils_pair(tmp_path: Path) -> tuple[str, str]:
    """``org-a/utils`` (a Python package) and ``org-b/utils`` (a Node one that the
    app of org-a needs), as file:// URLs."""
    a = bare(tmp_path, "org-a", "utils", {
        "pyproject.toml": '[project]\nname = "org-a-utils"\n'})
    b = bare(tmp_path, "org-b", "utils", {"package.json": '{"name": "@org-b/utils"}\n'})
    return f"file://{a}", f"file://{b}"


def test_two_repositories_of_one_name_are_both_cloned_and_both_catalogued(
        tmp_path: Path, utils_pair: tuple[str, str]) -> None:
    a, b = utils_pair
    app = bare(tmp_path, "org-a", "app", {
        "package.json": '{"name": "app", "dependencies": {"@org-b/utils": "^1"}}\n'})
    work = tmp_path / "work"
    work.mkdir()
    doc = coord_json(work, "init", "--from", str(listing(tmp_path, a, b, f"file://{app}")),
                     "--into", str(work / "src"))
    assert [(c["url"], Path(c["path"]).name, c["result"]) for c in doc["cloned"]] == [
        (a, "org-a-utils", "cloned"), (b, "org-b-utils", "cloned"), (f"file://{app}", "app",
                                                                     "cloned")]
    assert (work / "src" / "org-a-utils" / "pyproject.toml").is_file()
    assert (work / "src" / "org-b-utils" / "package.json").is_file()
    cat = CatalogStore(work / "ecosystem.yaml", cache_dir=None).load()
    assert {r.name: (r.path, r.url) for r in cat.repos} == {
        "org-a-utils": ("src/org-a-utils", a), "org-b-utils": ("src/org-b-utils", b),
        "app": ("src/app", f"file://{app}")}
    # the dependency is on the right one of the two
    assert [(d.consumer, d.provider) for d in cat.coordination.dependencies] == [
        ("app", "org-b-utils")]
    # again: both present, nothing added
    again = coord_json(work, "init", "--from", str(tmp_path / "repos.txt"),
                       "--into", str(work / "src"))
    assert [c["result"] for c in again["cloned"]] == ["present"] * 3
    assert again["repos_added"] == []


def test_a_checkout_of_one_name_from_an_earlier_run_is_the_one_it_was_cloned_from(
        tmp_path: Path, utils_pair: tuple[str, str]) -> None:
    a, b = utils_pair
    into = tmp_path / "src"
    coord_json(tmp_path, "init", "--from", str(listing(tmp_path, a)), "--into", str(into))
    assert left_in(into) == ["utils"]
    doc = coord_json(tmp_path, "init", "--from", str(listing(tmp_path, a, b)),
                     "--into", str(into))
    assert [(Path(c["path"]).name, c["result"]) for c in doc["cloned"]] == [
        ("utils", "present"), ("org-b-utils", "cloned")]
    cat = CatalogStore(tmp_path / "ecosystem.yaml", cache_dir=None).load()
    assert {r.name: r.url for r in cat.repos} == {"utils": a, "org-b-utils": b}


def test_a_checkout_of_that_name_from_elsewhere_is_refused_naming_both(
        tmp_path: Path, utils_pair: tuple[str, str]) -> None:
    a, b = utils_pair
    other = bare(tmp_path, "org-c", "utils", {"go.mod": "module example.com/utils\n"})
    into = tmp_path / "src"
    git(tmp_path, "clone", "-q", str(other), str(into / "utils"))
    # one URL of that name: its place holds another repository's checkout
    res = coord(tmp_path, "init", "--from", str(listing(tmp_path, a)), "--into", str(into),
                expect=2)
    assert f"{into / 'utils'} is a checkout of " in res.stderr and str(other)[1:-4] in res.stderr
    assert f"not of {a}" in res.stderr and "nothing was cloned" in res.stderr
    # two of that name: coord cannot tell which the checkout was meant to be
    res = coord(tmp_path, "init", "--from", str(listing(tmp_path, a, b)), "--into", str(into),
                expect=2)
    assert f"{a}, {b} are all named utils" in " ".join(res.stderr.split()), res.stderr
    assert left_in(into) == ["utils"] and not (tmp_path / "ecosystem.yaml").exists()


def test_a_refused_from_clones_nothing(tmp_path: Path, utils_pair: tuple[str, str]) -> None:
    a, _ = utils_pair
    into = tmp_path / "src"
    # the second entry is no checkout: refused before the first is cloned
    res = coord(tmp_path, "init", "--from", str(listing(tmp_path, a, "./not-a-checkout")),
                "--into", str(into), expect=2)
    assert "not-a-checkout is not a git checkout" in res.stderr
    assert not into.exists() and not (tmp_path / "ecosystem.yaml").exists()
    # a directory in a later clone's way: refused too, the first not cloned
    (into / "web").mkdir(parents=True)
    web = bare(tmp_path, "org-a", "web", {"package.json": '{"name": "web"}\n'})
    res = coord(tmp_path, "init", "--from", str(listing(tmp_path, a, f"file://{web}")),
                "--into", str(into), expect=2)
    assert f"{into / 'web'} exists and is not a git checkout" in res.stderr
    assert left_in(into) == ["web"]


def test_a_failed_clone_removes_the_clones_before_it(
        tmp_path: Path, utils_pair: tuple[str, str]) -> None:
    a, b = utils_pair
    into = tmp_path / "deep" / "src"
    res = coord(tmp_path, "init", "--from",
                str(listing(tmp_path, a, b, f"file://{tmp_path}/git/none/gone.git")),
                "--into", str(into), expect=1)
    assert "git clone file://" in res.stderr and "gone.git failed" in res.stderr
    assert "nothing was cloned" in res.stderr
    assert not (tmp_path / "deep").exists() and not (tmp_path / "ecosystem.yaml").exists()


def running(pid: int) -> int:
    """``pid`` if that process still runs (a zombie, killed and not yet reaped by the
    init it was left to, does not), else 0."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0 if state in ("Z", "X") else pid


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_from_leaves_no_clone(tmp_path: Path, utils_pair: tuple[str, str],
                                             signum: signal.Signals) -> None:
    """The second URL's clone hangs (its ssh never answers); stopped then, the first
    clone, done by then, is removed with the directory it was staged in."""
    a, _ = utils_pair
    started, pidfile = tmp_path / "ssh-started", tmp_path / "ssh.pid"
    ssh = tmp_path / "slow-ssh"
    ssh.write_text(f"#!/bin/sh\necho $$ > {pidfile}\ntouch {started}\nexec sleep 60\n")
    ssh.chmod(0o755)
    into = tmp_path / "src"
    env = {k: v for k, v in os.environ.items() if k != "COORD_ECOSYSTEM"}
    env.update(PYTHONPATH=str(ROOT), GIT_SSH_COMMAND=str(ssh),
               XDG_CACHE_HOME=str(tmp_path / ".cache-home"),
               PYTHONFAULTHANDLER="1")  # a SIGABRT prints where each thread is
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "init", "--from",
         str(listing(tmp_path, a, "ssh://git.invalid/org-z/slow.git")), "--into", str(into)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(started.exists, timeout=60, what="the second clone to start")
        assert [p for p in left_in(into) if p.startswith(".coord-clones-")]  # staged there
        proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # (seen once in a full run): say where it was
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"coord init --from still ran 60 s after {signum.name}; its "
                        f"threads when aborted:\n{err[-6000:]}")
        # coord kills git's ssh with it: SIGKILL sent, which a busy machine may take a
        # moment to carry out (a full CI run saw it still running right after coord)
        pid, deadline = int(pidfile.read_text()), time.monotonic() + 10
        while (ssh_left := running(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pidfile.exists():  # the fake ssh this test started
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    assert proc.returncode == 130, err
    assert "aborted" in err or "interrupted" in err
    assert not into.exists(), left_in(into)
    assert not ssh_left, f"the clone's ssh (pid {ssh_left}) still ran after coord ended"
    assert not (tmp_path / "ecosystem.yaml").exists()
