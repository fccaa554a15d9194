"""Embedded webhook deliveries left pending, delivered by a detached process.

An embedded sweep's process delivers its outbox before it exits (bounded by the
delivery timeout: :func:`coordination.sweeps.notices.notify.deliver_left`); what failed then
is due again later, and the next coord command that opens the catalog's runtime sees
it. That command does not deliver it itself: a read (`coord sweep list`,
`$(coord sweep status ID --json)`) would wait up to the delivery timeout on a slow
receiver. It starts this module as a detached process instead
(:func:`deliver_later`) and exits at once:

- **one at a time**: the starter takes ``notify.lock`` in the catalog's server
  directory (a ``flock``) and hands the locked file to the child, which holds it until
  it exits; a command that finds it locked starts nothing (one delivers already). The
  outbox's own lease keeps two deliverers from POSTing the same delivery anyway.
- **the server stays up**: the child inherits a membership of the embedded server
  (:func:`~coordination.connection.embedded_server.lend_membership`), so the server is
  not shut down when the starter, maybe its last member, leaves first.
- **detached**: its own session, stdin from ``/dev/null``, stdout and stderr appended
  to the server directory's ``redis.log`` (as the watchdog's are): nothing holds the
  starter's terminal or pipes (a ``$(...)`` returns when the command exits).

What the child cannot deliver within the timeout stays pending for the next command.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path

from coordination.connection.client import real_client
from coordination.connection.embedded_server import LOGFILE, joined_dir, lend_membership
from coordination.runtime.context import Runtime
from coordination.settings import get_settings

log = logging.getLogger("coord.notify")

#: The lock file (in the server directory) a running deliverer holds.
LOCK = "notify.lock"


def deliver_later(rt: Runtime) -> bool:
    """Start a detached deliverer of ``rt``'s outbox (embedded, joined by this process)
    unless one runs already; True if one was started. Never waits on it."""
    directory = joined_dir(rt.url) if rt.url else None
    if directory is None:
        return False
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a deliverer runs (and holds it until it exits)
        member = lend_membership(str(rt.url))
        try:
            _spawn(directory, str(rt.url), rt.settings.namespace, fd, member)
        finally:
            os.close(member)
    finally:
        os.close(fd)  # the child's copy keeps the lock
    return True


def _spawn(directory: Path, url: str, namespace: str, lock_fd: int, member_fd: int) -> None:
    package_root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "COORD_REDIS_URL"}
    env["COORD_NAMESPACE"] = namespace
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.fsdecode(package_root), env.get("PYTHONPATH", "")) if p)
    os.set_inheritable(lock_fd, True)
    log_fd = os.open(directory / LOGFILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        subprocess.Popen(
            [sys.executable, "-m", __name__, url, str(lock_fd), str(member_fd)],
            cwd=directory, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=log_fd, stderr=log_fd, close_fds=True, pass_fds=(lock_fd, member_fd))
    finally:
        os.close(log_fd)


def _main(argv: list[str]) -> int:
    """The detached deliverer: ``URL LOCK_FD MEMBER_FD`` (both descriptors held, not
    used, until it exits)."""
    if len(argv) != 3:
        print("usage: python -m coordination.sweeps.notices.notify_later URL LOCK_FD MEMBER_FD",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s notify {os.getpid()}: %(message)s")
    # lazy: the HTTP side, only in the deliverer (the CLI that starts it never loads it)
    from coordination.sweeps.notices.notify import deliver_left

    rt = Runtime.create(get_settings(), client=real_client(argv[0]))
    try:
        left = deliver_left(rt)
    except Exception:  # noqa: BLE001 - the next command tries again
        log.exception("delivering the webhooks left pending failed")
        return 1
    log.info("delivered the webhook deliveries left due; %d still pending (the next "
             "coord command starts another pass when they are due)", left)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
