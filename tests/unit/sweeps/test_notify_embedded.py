"""An embedded sweep's webhooks go out before its process exits: no notifier is left
once its workers are gone, so its last events (`todo.failed`, `sweep.finished`) are
delivered on the way out, within the delivery timeout; what fails stays pending,
`coord notify log` shows it, and the next coord command that opens the catalog's
runtime (`notify log`, `sweep list`...) delivers it when it is due. `coord plan sweep` as a
user runs it (embedded: the catalog's own server), a local HTTP receiver."""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.support.cli import loaded
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[3]


#: Seconds the slow receiver holds its first POST at most: under coord's 10 s delivery
#: timeout, so the delivery is answered, not given up on and sent again.
HOLD = 8.0


class Receiver:
    def __init__(self, port: int = 0, hold_first: bool = False) -> None:
        self.code = 200
        #: the first POST is answered once the test :meth:`release`-s it, or after
        #: :data:`HOLD` s (a slow endpoint that still answers within coord's timeout)
        self.hold_first = hold_first
        self.holding = threading.Event()  # set once the first POST is being held
        self.released = threading.Event()  # set once it is no longer held
        self.lock = threading.Lock()
        self.accepted: list[str] = []  # "kind:todo" of each delivery answered 2xx
        self.tried = 0
        box = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.body())
                ev = body["event"]
                with box.lock:
                    box.tried += 1
                    hold, box.hold_first = box.hold_first, False
                if hold:
                    box.holding.set()
                    box.released.wait(HOLD)
                    box.released.set()
                with box.lock:
                    if box.code < 300:
                        box.accepted.append(f"{ev['kind']}:{ev.get('todo_id') or ''}")
                self.answer(box.code)

        self.server = serve(Handler, port)
        self.port = self.server.server_address[1]

    def got(self) -> list[str]:
        with self.lock:
            return sorted(self.accepted)

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        stop_serving(self.server)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def catalog(root: Path, port: int) -> Path:
    (root / "repos" / "api").mkdir(parents=True)
    cat = root / "ecosystem.yaml"
    cat.write_text(f"""version: 1
repos:
  - name: api
    path: repos/api
notify:
  - url: "http://127.0.0.1:{port}/hook"
    events: [todo.failed, sweep.finished]
coordination:
  plans:
    - {{id: PLAN-001, title: notified, status: active}}
  todos:
    - {{id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "exit 3"}}
    - {{id: TODO-002, task: two, repo: api, plan: PLAN-001, run: "true"}}
""")
    return cat


def coord(cat: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(cat), *args],
        cwd=cat.parent, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


WANT = ["sweep.finished:", "todo.failed:TODO-001"]


def swept_with_the_receiver_down(root: Path) -> tuple[Path, int]:
    """The catalog's sweep run while nothing listens on its webhook's port: it ends
    failed with both deliveries pending. The catalog and the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cat = catalog(root, port)
    r = coord(cat, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert json.loads(r.stdout)["status"] == "failed", r.stderr
    assert "2 webhook deliveries are still pending" in r.stderr, r.stderr
    return cat, port


def test_an_embedded_sweep_delivers_before_it_exits(tmp_path: Path, receiver: Receiver) -> None:
    cat = catalog(tmp_path, receiver.port)
    r = coord(cat, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert json.loads(r.stdout)["status"] == "failed", r.stderr
    # At once: delivered by the sweep's own process on its way out.
    assert receiver.got() == WANT
    log = json.loads(coord(cat, "notify", "log", "--json").stdout)
    assert sorted(e["status"] for e in log) == ["delivered", "delivered"]


def test_what_failed_stays_pending_and_the_next_command_delivers_it(
        tmp_path: Path, receiver: Receiver) -> None:
    cat = catalog(tmp_path, receiver.port)
    receiver.code = 503
    r = coord(cat, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert json.loads(r.stdout)["status"] == "failed", r.stderr
    assert receiver.tried == 1 and receiver.got() == []  # its lane waits behind the first
    assert "2 webhook deliveries are still pending" in r.stderr, r.stderr
    receiver.code = 200
    # `notify log` shows them pending until their next try is due, then delivers them.
    log = json.loads(coord(cat, "notify", "log", "--json").stdout)
    pending = [e for e in log if e["status"] == "pending"]
    if pending:
        assert [e["last_error"] for e in pending if e["attempts"]] == ["HTTP 503"]
        # The one not tried yet waits behind the failed one: the same next try.
        assert len({e["next_at"] for e in pending}) == 1 and pending[0]["next_at"]
        due = max(float(e["next_at"]) for e in pending)
        deadline = time.monotonic() + 30
        while time.time() <= due:
            assert time.monotonic() < deadline, "the next try is not due within 30 s"
            time.sleep(0.1)
        human = coord(cat, "notify", "log")
        assert human.returncode == 0, human.stderr
    assert receiver.got() == WANT
    log = json.loads(coord(cat, "notify", "log", "--json").stdout)
    assert sorted(e["status"] for e in log) == ["delivered", "delivered"]
    assert sorted(e["attempts"] for e in log) == [1, 2]


def test_an_embedded_sweep_delivers_while_it_runs(tmp_path: Path, receiver: Receiver) -> None:
    """A todo's failure reaches the webhook while the sweep's other todo still runs: the
    embedded workers' notifier takes the outbox on its first pass, at once (it waited
    half a lease first, so a short sweep's deliveries all waited for its end)."""
    cat = catalog(tmp_path, receiver.port)
    cat.write_text(cat.read_text().replace('run: "true"', 'run: "sleep 60"'))
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(cat), "plan", "sweep",
         "PLAN-001", "--strategy", "eager", "--wait", "--json"], cwd=cat.parent,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200",
             "COORD_EMBEDDED_PROCESSES": "2",
             # Half a lease is 30 s: a notifier waiting that long first misses the deadline.
             "COORD_LEASE_TTL": "60"})
    try:
        deadline = time.monotonic() + 15
        while receiver.got() != ["todo.failed:TODO-001"]:
            assert proc.poll() is None, "the sweep ended before its first delivery"
            assert time.monotonic() < deadline, "todo.failed not delivered within 15 s"
            time.sleep(0.1)
        assert proc.poll() is None  # still running TODO-002
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_a_receiver_down_at_exit_gets_its_deliveries_from_the_next_sweep_list(
        tmp_path: Path) -> None:
    """The receiver is down (its port closed) when the embedded sweep's process exits;
    it comes up; a later `coord sweep list`, which runs no sweep, delivers what is due
    before it exits. Once nothing is due, `sweep list` loads no HTTP code."""
    cat, port = swept_with_the_receiver_down(tmp_path)
    up = Receiver(port)
    try:
        deadline = time.monotonic() + 30  # the first retry is due 1 s after the exit
        while up.got() != WANT:
            assert time.monotonic() < deadline, f"not delivered by `sweep list`: {up.got()}"
            listed = coord(cat, "sweep", "list", "--json")
            assert listed.returncode == 0, listed.stderr
        assert up.tried == 2  # each once: by `sweep list`, nothing else runs here
    finally:
        up.close()
    modules = loaded(cat, "sweep", "list", every=True)
    assert "coordination.cli.sweep" in modules
    assert not {"coordination.sweeps.notices.notify", "http.client"} & modules
    log = json.loads(coord(cat, "notify", "log", "--json").stdout)
    assert sorted(e["status"] for e in log) == ["delivered", "delivered"]


def test_a_read_command_never_waits_on_a_slow_receiver(tmp_path: Path) -> None:
    """What is left is delivered from a detached process the next command starts: `coord
    sweep list` returns while the endpoint has not answered (0.4.0 waited up to 10 s for
    it, and so did a `$(coord sweep list --json)`), the deliveries still arrive, each
    once, though two commands ran while the first was being delivered. The receiver
    holds its first POST until the second `sweep list` has returned (:data:`HOLD` s at
    most): a list that delivered itself would have returned only once it let go."""
    cat, port = swept_with_the_receiver_down(tmp_path)
    due = time.time() + 1.5  # the first retry: 1 s after the attempt at its exit
    slow = Receiver(port, hold_first=True)
    try:
        deadline = time.monotonic() + 30
        while time.time() <= due:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for i in range(2):  # (capture_output: a child holding its pipes would block this)
            listed = coord(cat, "sweep", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            assert json.loads(listed.stdout)[0]["status"] == "failed"
            if i == 0:  # the second list runs while the first POST is held
                assert not slow.released.is_set(), "`sweep list` waited on the endpoint"
                assert slow.holding.wait(40), "no delivery started after `sweep list`"
        slow.release()
        deadline = time.monotonic() + 40
        while slow.got() != WANT:
            assert time.monotonic() < deadline, f"not delivered in the background: {slow.got()}"
            time.sleep(0.1)
        assert slow.tried == 2  # each once: one deliverer at a time
    finally:
        slow.close()
    lock = cat.parent / ".ecosystem.yaml.coord.redis" / "notify.lock"
    with lock.open("rb") as fh:  # the deliverer exits once done (it holds this until then)
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the deliverer did not exit"
                time.sleep(0.1)
    log = json.loads(coord(cat, "notify", "log", "--json").stdout)
    assert sorted(e["status"] for e in log) == ["delivered", "delivered"]
