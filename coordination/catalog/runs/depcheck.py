"""Running one dependency's validation command.

The command comes from the catalog (never from CLI arguments), so it runs
through the shell like a todo's ``run``. It runs in the consumer's checkout
with stdin closed, in its own session so a timeout can kill everything it
started (a pipeline, a background child), and its output is kept bounded: a
chatty command cannot fill memory, and only the tail is reported.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from coordination.jsonable import JSONObject

SATISFIED = "satisfied"
UNSATISFIED = "unsatisfied"
SKIPPED = "skipped"

# Bytes kept per stream; the pattern is matched against what is kept of stdout.
MAX_CAPTURE = 256 * 1024
TAIL_CHARS = 2000
# How long to wait for the pipes to close after the shell exited before the
# leftovers of its process group (background children) are killed.
DRAIN_GRACE = 1.0


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one dependency check, as reported by `coord dep check`."""

    id: str
    status: str  # satisfied | unsatisfied | skipped
    exit_code: int | None
    reason: str
    output_tail: str = ""
    duration: float = 0.0
    consumer: str = ""
    provider: str = ""


class _Capture(threading.Thread):
    """Reads one pipe to its end, keeping only the last ``limit`` bytes."""

    def __init__(self, pipe: IO[bytes], limit: int = MAX_CAPTURE) -> None:
        super().__init__(daemon=True)
        self.pipe, self.limit = pipe, limit
        self.data = bytearray()
        self.truncated = False

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(65536):  # type: ignore[attr-defined]
                self.data += chunk
                if len(self.data) > self.limit:
                    del self.data[: len(self.data) - self.limit]
                    self.truncated = True
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(stdout: str, stderr: str) -> str:
    text = stdout
    if stderr.strip():
        text = (text.rstrip("\n") + "\n" if text.strip() else "") + stderr
    return text[-TAIL_CHARS:]


def run_check(
    dep_id: str,
    command: str,
    cwd: Path,
    *,
    expected_pattern: str | None = None,
    timeout: float = 60.0,
) -> CheckResult:
    """Run ``command`` in ``cwd``; satisfied when it exits 0 and stdout matches."""
    start = time.monotonic()

    def result(status: str, reason: str, code: int | None = None, tail: str = "") -> CheckResult:
        return CheckResult(dep_id, status, code, reason, tail, round(time.monotonic() - start, 3))

    if not cwd.is_dir():
        return result(
            UNSATISFIED,
            f"checkout {cwd} does not exist; clone the consumer repo there or fix its `path`",
        )
    try:
        proc = subprocess.Popen(  # noqa: S602 - the command comes from the catalog
            command,
            shell=True,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return result(UNSATISFIED, f"could not start the validation command: {exc}")
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capture(proc.stdout), _Capture(proc.stderr)
    out.start()
    err.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        proc.wait()
    except BaseException:
        # Ctrl-C or similar: never leave the command running behind us.
        _kill_group(proc.pid)
        proc.wait()
        raise
    for reader in (out, err):
        reader.join(DRAIN_GRACE)
    if out.is_alive() or err.is_alive():
        # Background children still hold the pipes: a validation leaves nothing running.
        _kill_group(proc.pid)
        out.join(DRAIN_GRACE)
        err.join(DRAIN_GRACE)
    for reader in (out, err):
        if not reader.is_alive():  # a reader stuck in read() holds the buffer's lock
            reader.pipe.close()
    stdout = out.text()
    tail = _tail(stdout, err.text())
    if timed_out:
        return result(
            UNSATISFIED, f"timed out after {timeout:g}s (process group killed)", None, tail
        )
    code = proc.returncode
    if code != 0:
        return result(UNSATISFIED, f"validation command exited with code {code}", code, tail)
    if expected_pattern is not None and not re.search(expected_pattern, stdout, re.MULTILINE):
        return result(
            UNSATISFIED, f"output does not match expected_pattern {expected_pattern!r}", code, tail
        )
    reason = "command exited 0"
    if expected_pattern is not None:
        reason += f" and output matches {expected_pattern!r}"
    return result(SATISFIED, reason, code, tail)


class CheckDocument(TypedDict):
    """``coord dep check --json``."""

    ok: bool
    checked: int
    unsatisfied: list[str]
    results: list[JSONObject]  # each CheckResult's fields


def check_document(results: list[CheckResult]) -> CheckDocument:
    """``coord dep check --json``: ``{"ok", "checked", "unsatisfied": [ids], "results"}``."""
    failed = [r for r in results if r.status == UNSATISFIED]
    return {
        "ok": not failed,
        "checked": sum(r.status != SKIPPED for r in results),
        "unsatisfied": [r.id for r in failed],
        "results": [asdict(r) for r in results],
    }
