"""``$COORD_OUTPUT`` of each run: a file in the worker process's private directory (#64:
``mkstemp``'s random name per run was a tenth of a todo's own work on the worker)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

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
