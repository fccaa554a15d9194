"""The manifest file a land or revert command is given (``$COORD_CHANGE_MANIFEST``): the
command reads it, it is gone once the command ends, and one a killed lander left behind
is removed by a later command."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from coordination.change.landing import LAND_COMMAND_TIMEOUT, run_change_command
from coordination.change.manifest import Manifest, ManifestRepo


def _change(worktree: Path) -> tuple[Manifest, ManifestRepo]:
    repo: ManifestRepo = {"repo": "api", "order": 0, "remote": "origin", "base": "main",
                          "base_sha": "a" * 40, "candidate": "b" * 40,
                          "worktree": str(worktree), "land_command": None}
    return {"plan": "PLAN-1", "branch": "chg", "land": "command", "created": 0,
            "repos": [repo]}, repo


def test_a_killed_landers_manifest_is_removed_by_a_later_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lander SIGKILLed while its command ran (its ``finally`` never runs) left its
    manifest in ``$TMPDIR`` for good: the chaos tests' killed landings left four a test
    run. The next command removes those of processes no longer running, once older than
    a land command may run (a lander of another pid namespace sharing the directory may
    have that pid); a running lander's, a recent one and files not named so are kept."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    done = subprocess.Popen(["true"])
    done.wait()
    dead = done.pid
    old = time.time() - LAND_COMMAND_TIMEOUT - 120
    files = {name: tmpdir / name for name in (
        f"coord-manifest-{dead}-k1ll3d.json",  # left by a killed lander: removed
        f"coord-manifest-{dead}-r3c3nt.json",  # recent: maybe another namespace's, running
        f"coord-manifest-{os.getpid()}-l1v3.json",  # a running lander's
        "coord-manifest-n0pid.json", f"coord-manifest-{dead}-x.txt")}  # not one of ours
    for name, path in files.items():
        path.write_text("{}")
        if "r3c3nt" not in name:
            os.utime(path, (old, old))
    worktree = tmp_path / "wt"
    worktree.mkdir()
    m, e = _change(worktree)
    seen = tmp_path / "seen.json"

    why = run_change_command("land", f'cp "$COORD_CHANGE_MANIFEST" {seen}', m, e)

    assert why is None
    assert json.loads(seen.read_text(encoding="utf-8"))["plan"] == "PLAN-1"
    left = sorted(p.name for p in tmpdir.iterdir())
    assert left == sorted(n for n in files if "k1ll3d" not in n), left
