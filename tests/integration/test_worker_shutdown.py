"""A worker's warm shutdown: SIGTERM mid-todo lets the todo finish, and the worker
exits 0 with a clean log (issue #21, item 6).

Regression: a ``threading.Thread`` subclass that sets ``self._stop = threading.Event()``
shadows ``Thread._stop``, which ``join()`` and ``is_alive()`` call once the thread has
ended. The supervisor thread's ``stop()`` joins it from Celery's
``worker_shutting_down`` handler, so every warm shutdown logged
``TypeError: 'Event' object is not callable`` with a traceback while still exiting 0.
Only reading the worker's log catches that, so this test reads all of it.
"""

from __future__ import annotations

import re
import signal
import subprocess

import pytest

from tests.integration.helpers import Cluster, T, read_lines, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# Long enough that SIGTERM lands while it runs; the markers show it ran once, to the end.
RUN = "echo start >> $COORD_TODO_ID.log; sleep 2; echo end >> $COORD_TODO_ID.log; echo done"

# A traceback, an exception name, or a record Celery/logging wrote at ERROR or above.
BAD_LINE = re.compile(
    r"Traceback \(most recent call last\)|\b\w*(Error|Exception)\b(:|\(| raised)"
    r"|\b(ERROR|CRITICAL)\b"
)


def test_sigterm_mid_todo_finishes_it_and_exits_0_with_a_clean_log(cluster: Cluster) -> None:
    cluster.write_catalog({"a": 1}, [T("TODO-001", "a", RUN)])
    (w,) = cluster.start_workers(["a"])
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    # Its liveness record is there before the shutdown (so its absence after means something).
    wait_until(lambda: [r for r in cluster.rt.workers.live() if r.pid == w.pid], 10,
               "the worker's liveness record")

    w.signal(signal.SIGTERM)  # Celery's warm shutdown: the running todo finishes first
    try:
        code = w.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker did not exit within 30 s of SIGTERM:\n{w.log_text()[-3000:]}")
    log = w.log_text()
    assert code == 0, f"worker exited {code}:\n{log[-3000:]}"

    # The todo ran once, to the end, before the worker exited.
    assert read_lines(cluster.repo_dir("a") / "TODO-001.log") == ["start", "end"]
    st = cluster.wait_sweep(sid, timeout=20)
    assert st["status"] == "succeeded", st
    todo = st["todos"]["TODO-001"]
    assert todo["status"] == "succeeded" and todo["attempts"] == 1 and todo["exit_code"] == 0, todo

    # The log is clean: the shutdown was warm, and nothing raised on the way out.
    assert "Warm shutdown" in log, log[-4000:]
    bad = [line for line in log.splitlines() if BAD_LINE.search(line)]
    assert not bad, "error lines in the worker's log:\n" + "\n".join(bad) + f"\n\n{log[-4000:]}"
    assert "Traceback" not in log and "TypeError" not in log  # implied above; the point of the test

    # It left the liveness registry on the way out, rather than expiring from it
    # (the shutdown handler removes the record after stopping the supervisor: a
    # raise there leaves it behind for three missed beats).
    assert [r.name for r in cluster.rt.workers.live()] == []
