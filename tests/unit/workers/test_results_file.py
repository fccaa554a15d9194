"""``$COORD_OUTPUT`` of each run: a file in the worker process's private directory (#64:
``mkstemp``'s random name per run was a tenth of a todo's own work on the worker)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.unit.support.processes import dead_pid
from workers.results_file import ResultFiles, empty

pytestmark = pytest.mark.timeout(30)


def test_each_run_gets_an_empty_file_of_its_own_in_a_private_directory(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    files = ResultFiles()
    a, b = files.new("TODO-001"), files.new("TODO-001")
    assert a != b and Path(a).parent == Path(b).parent
    directory = Path(a).parent
    assert directory.parent == tmp_path
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # no one else makes or reads one
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600 and os.path.getsize(a) == 0
    Path(a).write_text("KEY=1\n")
    empty(a)
    assert os.path.getsize(a) == 0
    os.unlink(a)
    empty(a)  # removed by the todo: nothing to empty
    files.remove_all()
    assert not directory.exists()
    c = files.new("TODO-002")  # made again (a cleaner of /tmp removed it, say)
    assert Path(c).parent != directory and os.path.exists(c)
    files.remove_all()


def test_a_directory_removed_under_the_worker_is_made_again(tmp_path: Path) -> None:
    files = ResultFiles()
    first = Path(files.new("TODO-001")).parent
    for p in first.iterdir():
        p.unlink()
    first.rmdir()
    again = Path(files.new("TODO-001"))
    assert again.exists() and again.parent != first
    files.remove_all()


def test_an_empty_file_goes_to_the_threads_next_run_renamed_and_checked(tmp_path: Path) -> None:
    files = ResultFiles()
    a = files.new("TODO-001")
    ino = os.stat(a).st_ino
    os.chmod(a, 0o644)  # the todo loosened it: made 0600 again
    files.done(a, empty=True)
    b = files.new("TODO-002")
    assert b != a and not os.path.exists(a) and "TODO-002" in Path(b).name
    assert os.stat(b).st_ino == ino and os.path.getsize(b) == 0
    assert stat.S_IMODE(os.stat(b).st_mode) == 0o600
    # a file something wrote to is removed, never handed on
    Path(b).write_text("KEY=1\n")
    held = os.open(b, os.O_RDONLY)  # (its inode number is not reused while held)
    try:
        files.done(b, empty=False)
        assert not os.path.exists(b)
        c = files.new("TODO-003")
        assert os.stat(c).st_ino != ino and os.path.getsize(c) == 0
    finally:
        os.close(held)
    files.remove_all()


def test_a_kept_file_that_changed_since_is_not_handed_on(tmp_path: Path) -> None:
    files = ResultFiles()
    target = tmp_path / "worker-file"
    target.write_text("keep me")
    for change in ("written", "symlink", "hardlink", "fifo"):
        a = files.new("TODO-001")
        files.done(a, empty=True)
        if change == "written":  # by a process left behind, after the run was read
            Path(a).write_text("LATE=1\n")
        elif change == "symlink":
            os.unlink(a)
            os.symlink(target, a)
        elif change == "hardlink":
            os.link(a, tmp_path / f"extra-{change}")
        else:
            os.unlink(a)
            os.mkfifo(a)
        b = files.new("TODO-002")
        assert os.path.isfile(b) and not os.path.islink(b) and os.path.getsize(b) == 0, change
        assert os.stat(b).st_nlink == 1, change
        assert not os.path.lexists(a), change
        files.done(b, empty=False)
    assert target.read_text() == "keep me"
    files.remove_all()


def test_a_kept_file_goes_to_no_other_thread_nor_to_a_todo_user(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import workers.results_file as results_file

    files = ResultFiles()
    a = files.new("TODO-001")
    files.done(a, empty=True)
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(files.new("TODO-002")))
    t.start()
    t.join()
    assert os.path.exists(a) and got[0] != a and os.path.exists(got[0])
    from workers.execute import TodoUser

    user = TodoUser("todo", os.geteuid(), os.getegid(), (), "/")
    monkeypatch.setattr(results_file, "todo_user", lambda: user)
    b = files.new("TODO-003")  # the todo user's: its own file
    assert b != a and os.path.exists(a)
    files.remove_all()


def test_directories_left_by_processes_gone_are_removed_and_no_other(tmp_path: Path) -> None:
    """A worker process killed (SIGKILL, the OOM killer) leaves its directory in the
    temporary directory; the next process to make one removes it once untouched for a
    while. Kept: a running process's, one touched lately, another name or kind, a link
    (never followed), and those of before 0.7 (no process id in their name)."""
    import time

    from workers import results_file
    from workers.results_file import PREFIX, remove_stale

    old = time.time() - results_file.STALE_AFTER - 10

    def made(name: str, *, files: int = 0, at: float = old) -> Path:
        d = tmp_path / name
        d.mkdir()
        for i in range(files):
            (d / f"TODO-{i}-1.out").write_text("")
        os.utime(d, (at, at))
        return d

    stale = made(f"{PREFIX}{dead_pid()}-abcd1234", files=2)
    running = made(f"{PREFIX}{os.getpid()}-abcd1234")
    lately = made(f"{PREFIX}{dead_pid()}-abcd1234", at=time.time() - 5)
    before_07_empty = made(f"{PREFIX}k3y_ab12")
    before_07_full = made(f"{PREFIX}x9y_ab12", files=1)
    elsewhere = tmp_path / "outside"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    link = tmp_path / f"{PREFIX}{dead_pid()}-link0000"
    link.symlink_to(elsewhere)
    plain = tmp_path / f"{PREFIX}{dead_pid()}-file0000"
    plain.write_text("")
    unrelated = made("coord-ctx-0")
    kept_too = []
    if os.geteuid() == 0:  # another user's, named as ours: never this user's to remove
        strangers = made(f"{PREFIX}{dead_pid()}-nobody00", files=1)
        os.chown(strangers, 65534, 65534)
        os.utime(strangers, (old, old))
        kept_too.append(strangers)

    assert remove_stale(str(tmp_path)) == 1
    assert not stale.exists()
    for kept in (running, lately, before_07_empty, before_07_full, link, plain, unrelated,
                 *kept_too):
        assert kept.exists() or kept.is_symlink(), kept
    assert (elsewhere / "keep").exists()
    # at most so many a call
    more = [made(f"{PREFIX}{dead_pid()}-more{i:04d}") for i in range(3)]
    assert remove_stale(str(tmp_path), limit=2) == 2
    assert sum(p.exists() for p in more) == 1


def test_a_worker_process_making_its_directory_names_it_by_its_id_and_tidies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its own directory's name holds its process id, so the next one can tell it is
    gone; making it removes what processes gone left there."""
    import tempfile
    import time

    from workers.results_file import PREFIX, STALE_AFTER

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    left = tmp_path / f"{PREFIX}{dead_pid()}-zzzz0000"
    left.mkdir()
    (left / "TODO-1-0.out").write_text("")
    at = time.time() - STALE_AFTER - 1
    os.utime(left, (at, at))
    files = ResultFiles()
    path = Path(files.new("TODO-001"))
    assert path.parent.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert not left.exists()
    files.remove_all()
