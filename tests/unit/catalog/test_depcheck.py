"""depcheck: one validation command, run bounded and killed on timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.catalog.runs.depcheck import MAX_CAPTURE, SATISFIED, UNSATISFIED, run_check

pytestmark = pytest.mark.timeout(60)


def test_exit_zero_and_matching_output_is_satisfied(tmp_path: Path) -> None:
    r = run_check("DEP-001", "echo 'Version: 2.1.0'", tmp_path, expected_pattern=r"^Version: 2\.")
    assert (r.status, r.exit_code) == (SATISFIED, 0)
    assert "Version: 2.1.0" in r.output_tail


def test_pattern_is_searched_per_line(tmp_path: Path) -> None:
    r = run_check("DEP-001", "printf 'name: x\\nVersion: 2.0\\n'", tmp_path,
                  expected_pattern=r"^Version: 2\.")
    assert r.status == SATISFIED


def test_runs_in_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here\n")
    assert run_check("DEP-001", "cat marker.txt", tmp_path, expected_pattern="here").status == SATISFIED


def test_nonzero_exit_is_unsatisfied_with_the_code(tmp_path: Path) -> None:
    r = run_check("DEP-002", "echo oops >&2; exit 3", tmp_path)
    assert (r.status, r.exit_code) == (UNSATISFIED, 3)
    assert "code 3" in r.reason and "oops" in r.output_tail


def test_output_not_matching_is_unsatisfied(tmp_path: Path) -> None:
    r = run_check("DEP-003", "echo 'Version: 1.9'", tmp_path, expected_pattern=r"^Version: 2\.")
    assert r.status == UNSATISFIED and "expected_pattern" in r.reason


def test_timeout_kills_the_process_group_fast(tmp_path: Path) -> None:
    start = time.monotonic()
    r = run_check("DEP-004", "sleep 5 | cat; sleep 5", tmp_path, timeout=0.5)
    assert time.monotonic() - start < 4
    assert r.status == UNSATISFIED and r.exit_code is None and "timed out" in r.reason


def test_background_child_does_not_hold_the_check(tmp_path: Path) -> None:
    start = time.monotonic()
    r = run_check("DEP-005", "sleep 30 & echo started", tmp_path, timeout=20)
    assert time.monotonic() - start < 10
    assert r.status == SATISFIED


def test_missing_checkout_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "repos" / "api"
    r = run_check("DEP-006", "true", missing)
    assert r.status == UNSATISFIED and str(missing) in r.reason


def test_output_is_bounded(tmp_path: Path) -> None:
    r = run_check("DEP-007", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo END", tmp_path,
                  expected_pattern="^END$")
    assert r.status == SATISFIED
    assert len(r.output_tail) <= 2000 < MAX_CAPTURE


def test_stdin_is_closed(tmp_path: Path) -> None:
    r = run_check("DEP-008", "cat; echo done", tmp_path, expected_pattern="done", timeout=5)
    assert r.status == SATISFIED
