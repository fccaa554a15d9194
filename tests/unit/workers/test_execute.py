"""workers.execute: a todo's command runs in its own group and nothing of it outlives it.

Process checks use psutil and poll against a deadline instead of sleeping, since
the guard kills leftovers asynchronously (it runs once the worker closes its pipe).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from workers.execute import ExecResult, run_command

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes whose process group is ``pgid``.

    Zombies are dead: they only wait to be reaped by whoever inherited them
    (pid 1 in a container may never do it)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return found


def wait_until(
    pred: Callable[[], bool], deadline: float = 10.0, what: Callable[[], str] = lambda: ""
) -> None:
    end = time.monotonic() + deadline
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what()}")
        time.sleep(0.02)


def _describe(procs: list[psutil.Process]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        try:
            out.append((p.pid, " ".join(p.cmdline())))
        except psutil.Error:
            out.append((p.pid, "?"))
    return out


def assert_group_gone(pgid: int, deadline: float = 10.0) -> None:
    wait_until(
        lambda: not group_members(pgid),
        deadline,
        lambda: f"group {pgid} still has {_describe(group_members(pgid))}",
    )


def run(command: str, tmp_path: Path, **kw: object) -> ExecResult:
    kw.setdefault("timeout", 20)
    return run_command(command, cwd=tmp_path, **kw)  # type: ignore[arg-type]


# -- exit codes, env, cwd, stdin ---------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_codes(tmp_path: Path, code: int) -> None:
    r = run(f"exit {code}", tmp_path)
    assert (r.outcome, r.exit_code, r.reason) == ("exited", code, None)
    assert r.ok is (code == 0)
    assert r.pid is not None and r.duration >= 0


def test_shell_killed_by_signal_reports_128_plus_signum(tmp_path: Path) -> None:
    # The shell itself dies by SIGKILL: reported like a shell reports a child.
    assert run("kill -9 $$", tmp_path).exit_code == 128 + signal.SIGKILL
    # A child killed by a signal: the shell's own status, the same convention.
    assert run("sh -c 'kill -TERM $$'", tmp_path).exit_code == 128 + signal.SIGTERM


def test_env_is_added_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEC_TEST_INHERITED", "from-worker")
    r = run(
        'printf "%s|%s|%s" "$EXEC_TEST_X" "$EXEC_TEST_INHERITED" "$0"',
        tmp_path,
        env={"EXEC_TEST_X": "a b'c"},
    )
    assert r.stdout_tail == "a b'c|from-worker|coord-todo"


def test_cwd_is_used(tmp_path: Path) -> None:
    assert run("pwd -P", tmp_path).stdout_tail.strip() == str(tmp_path.resolve())


def test_stdin_is_closed(tmp_path: Path) -> None:
    r = run("cat; read x; echo rc=$?", tmp_path, timeout=10)
    assert r.ok and r.stdout_tail == "rc=1\n"
    assert r.duration < 5


def test_command_sees_only_stdio_fds(tmp_path: Path) -> None:
    """The guard pipe (fd 3 in the wrapper) is not inherited by the command."""
    # ls runs as a child of the shell ($$) and lists the shell's fds; `; true`
    # keeps dash from exec-ing ls in place of the shell.
    r = run("ls -l /proc/$$/fd/; true", tmp_path)
    links = dict(
        (line.split()[-3], line.split()[-1]) for line in r.stdout_tail.splitlines() if "->" in line
    )
    assert sorted(links) == ["0", "1", "2"], r.stdout_tail
    assert links["0"] == "/dev/null"


def test_quoting_and_wait_behave_like_sh_c(tmp_path: Path) -> None:
    # `wait` must not wait for the guard, `$#` is 0, quotes survive.
    r = run("""sleep 0.1 & wait; echo "n=$#" 'it''s' "$(echo sub)"; echo err >&2""", tmp_path)
    assert r.ok, r
    assert r.stdout_tail == "n=0 its sub\n"
    assert r.stderr_tail == "err\n"


def test_syntax_error_is_a_failed_exit(tmp_path: Path) -> None:
    r = run("if", tmp_path)
    assert r.outcome == "exited" and r.exit_code == 2 and "Syntax error" in r.stderr_tail


# -- output --------------------------------------------------------------------


def test_tails_are_bounded_and_totals_counted(tmp_path: Path) -> None:
    cmd = (
        "head -c 300000 /dev/zero | tr '\\0' a; printf END; "
        "head -c 100000 /dev/zero | tr '\\0' b >&2; printf ERR >&2"
    )
    r = run(cmd, tmp_path, tail_bytes=1000)
    assert r.ok
    assert r.stdout_bytes == 300003 and r.stderr_bytes == 100003
    assert r.stdout_tail == "a" * 997 + "END"
    assert r.stderr_tail == "b" * 997 + "ERR"
    tail = r.output_tail(10)
    assert tail == (
        "--- stdout (last 10 chars of 300003 bytes) ---\naaaaaaaEND\n"
        "--- stderr (last 10 chars of 100003 bytes) ---\nbbbbbbbERR"
    )


def test_output_tail_small_and_empty() -> None:
    def result(out: str, err: str) -> ExecResult:
        return ExecResult(0, "exited", None, 0.0, out, err, len(out), len(err), 1)

    assert result("hi\n", "").output_tail() == "--- stdout ---\nhi\n"
    assert result("", "oops").output_tail() == "--- stderr ---\noops"
    assert result("", "").output_tail() == ""


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    r = run(r"printf 'ok \377\n'", tmp_path)
    assert r.stdout_tail == "ok \ufffd\n" and r.stdout_bytes == 5


def test_200mb_output_keeps_memory_bounded(tmp_path: Path) -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    t0 = time.monotonic()
    r = run("head -c 200000000 /dev/zero; head -c 50000000 /dev/zero >&2", tmp_path, timeout=50)
    elapsed = time.monotonic() - t0
    grown = me.memory_info().rss - before
    assert r.ok, r
    assert r.stdout_bytes == 200_000_000 and r.stderr_bytes == 50_000_000
    assert len(r.stdout_tail) == 64 * 1024 and len(r.stderr_tail) == 64 * 1024
    assert set(r.stdout_tail) == {"\0"}
    assert grown < 50 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert elapsed < 30, f"250 MB took {elapsed:.1f}s"


# -- killing ---------------------------------------------------------------------


def test_background_leftovers_die_with_the_todo(tmp_path: Path) -> None:
    pgids: list[int] = []
    r = run("sleep 300 & sleep 301 >/dev/null 2>&1 & echo started", tmp_path, on_start=pgids.append)
    assert r.ok and r.stdout_tail == "started\n"
    assert r.duration < 5
    assert pgids == [r.pid]
    assert_group_gone(pgids[0])


def test_timeout_kills_grandchildren(tmp_path: Path) -> None:
    pgids: list[int] = []
    r = run("sleep 300 & sleep 300; wait", tmp_path, timeout=0.5, on_start=pgids.append)
    assert (r.outcome, r.exit_code, r.reason) == ("timeout", None, "timed out after 0.5s")
    assert not r.ok
    assert 0.5 <= r.duration < 5
    assert_group_gone(pgids[0])


def test_timeout_sends_term_first(tmp_path: Path) -> None:
    r = run(
        "trap 'echo bye; exit 7' TERM; sleep 300 & wait",
        tmp_path,
        timeout=0.3,
        kill_grace=10,
    )
    assert r.outcome == "timeout" and r.exit_code is None
    assert r.stdout_tail == "bye\n"
    assert r.duration < 5  # did not wait the whole grace: the shell handled TERM


def test_term_ignoring_command_still_dies(tmp_path: Path) -> None:
    pgids: list[int] = []
    r = run(
        "trap '' TERM; sleep 100 & sleep 100",
        tmp_path,
        timeout=0.3,
        kill_grace=0.3,
        on_start=pgids.append,
    )
    assert r.outcome == "timeout" and r.exit_code is None
    assert 0.6 <= r.duration < 5
    assert_group_gone(pgids[0])


def test_infinite_timeout_is_allowed(tmp_path: Path) -> None:
    assert run("exit 3", tmp_path, timeout=float("inf")).exit_code == 3


def test_pipe_held_by_an_escaped_process_does_not_hang(tmp_path: Path) -> None:
    """A process that left the group (setsid) escapes the guard; if it keeps
    stdout open, run_command stops reading after a short drain instead of
    waiting for it."""
    pidfile = tmp_path / "escaped.pid"
    cmd = (
        "setsid sh -c 'echo $$ > escaped.pid.tmp; mv escaped.pid.tmp escaped.pid; exec sleep 30' & "
        "while [ ! -s escaped.pid ]; do sleep 0.01; done; echo done"
    )
    try:
        r = run(cmd, tmp_path, kill_grace=0.3)
        assert r.ok and r.stdout_tail == "done\n"
        assert r.duration < 5
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_no_fds_leak(tmp_path: Path) -> None:
    # The descriptors open after the runs that were not before (what each is, when one
    # is): counted by number, one another test's thread closed meanwhile in this process
    # read as a leak gone negative.
    def open_fds() -> dict[str, str]:
        out = {}
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        return out

    run("true", tmp_path)
    before = open_fds()
    run("echo hi; sleep 300 & exit 1", tmp_path)
    run("sleep 300", tmp_path, timeout=0.1, kill_grace=0.1)
    run_command("true", cwd=tmp_path / "missing", timeout=5)
    with pytest.raises(ValueError):
        run("true", tmp_path, on_start=lambda pid: int("x"))
    after = open_fds()
    assert {fd: what for fd, what in after.items() if before.get(fd) != what} == {}


def test_should_stop_kills_the_group(tmp_path: Path) -> None:
    calls = 0
    pgids: list[int] = []

    def should_stop() -> str | None:
        nonlocal calls
        calls += 1
        return "lease lost" if calls >= 3 else None

    r = run(
        "sleep 300 & sleep 300; wait",
        tmp_path,
        should_stop=should_stop,
        poll=0.05,
        on_start=pgids.append,
    )
    assert (r.outcome, r.exit_code, r.reason) == ("stopped", None, "lease lost")
    assert calls == 3
    assert r.duration < 5
    assert_group_gone(pgids[0])


def test_callback_exception_propagates_after_killing(tmp_path: Path) -> None:
    pgids: list[int] = []

    def should_stop() -> str | None:
        raise RuntimeError("redis down")

    with pytest.raises(RuntimeError, match="redis down"):
        run("sleep 300", tmp_path, should_stop=should_stop, poll=0.02, on_start=pgids.append)
    assert_group_gone(pgids[0])


def test_missing_cwd_is_an_error_outcome(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    r = run_command("true", cwd=missing, timeout=5)
    assert (r.outcome, r.exit_code, r.pid) == ("error", None, None)
    assert r.reason == f"cannot start: cwd {missing} does not exist"
    assert not r.ok


def test_cwd_that_is_a_file_is_an_error_outcome(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    r = run_command("true", cwd=f, timeout=5)
    assert r.outcome == "error" and str(f) in (r.reason or "")


def test_null_byte_in_command_is_an_error_outcome(tmp_path: Path) -> None:
    r = run("echo a\0b", tmp_path)
    assert r.outcome == "error" and r.reason and r.reason.startswith("cannot start")


WORKER_SCRIPT = """
import sys, threading
from workers.execute import run_command

def on_start(pid):
    print(pid, flush=True)

t = threading.Thread(
    target=run_command,
    args=("sleep 300 & sleep 300; wait",),
    kwargs=dict(cwd=sys.argv[1], timeout=120, on_start=on_start),
)
t.start()
t.join()
"""


def test_worker_sigkill_kills_the_todos_whole_group(tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        pgid = int(worker.stdout.readline())
        # shell + guard + two sleeps
        wait_until(
            lambda: sum("sleep" in p.name() for p in group_members(pgid)) == 2,
            what=lambda: f"both sleeps started in {_describe(group_members(pgid))}",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert_group_gone(pgid)
    finally:
        worker.kill()
        worker.wait()


def test_concurrent_calls_get_their_own_output(tmp_path: Path) -> None:
    results: dict[int, ExecResult] = {}
    pgids: dict[int, list[int]] = {i: [] for i in range(4)}

    def go(i: int) -> None:
        results[i] = run(
            f'i=0; while [ $i -lt 3000 ]; do echo "worker-{i}"; i=$((i+1)); done; exit {i}',
            tmp_path,
            tail_bytes=4096,
            on_start=pgids[i].append,
        )

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        r = results[i]
        assert r.outcome == "exited" and r.exit_code == i
        line = f"worker-{i}\n"
        assert r.stdout_bytes == 3000 * len(line)
        assert r.stdout_tail.endswith(line) and set(r.stdout_tail.splitlines()[1:]) == {line.strip()}
        assert_group_gone(pgids[i][0])
    assert len({pgids[i][0] for i in range(4)}) == 4


# -- the warden: one per worker process -------------------------------------------------

IN_FLIGHT_SCRIPT = """
import os, subprocess, sys
from workers.execute import GUARD_ENV, _warden

# What run_command does up to the spawn, then the worker dies before registering it.
token = _warden.token()
env = dict(os.environ, **{GUARD_ENV: token.decode()})
p = subprocess.Popen(["/bin/sh", "-c", "sleep 300 & sleep 300; wait"], env=env,
                     start_new_session=True, cwd=sys.argv[1])
print(p.pid, _warden._proc.pid, flush=True)
sys.stdin.readline()
"""


def test_a_spawn_the_worker_died_before_registering_is_killed_by_its_token(
        tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", IN_FLIGHT_SCRIPT, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert worker.stdout is not None
        pgid, warden = map(int, worker.stdout.readline().split())
        wait_until(lambda: sum("sleep" in p.name() for p in group_members(pgid)) == 2,
                   what=lambda: f"sleeps in {_describe(group_members(pgid))}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert_group_gone(pgid)
        wait_until(lambda: not psutil.pid_exists(warden)
                   or psutil.Process(warden).status() == psutil.STATUS_ZOMBIE)
    finally:
        worker.kill()
        worker.wait()


REPLACED_SCRIPT = """
import os, signal, sys, threading
from workers.execute import _warden, run_command

first = threading.Event()
t = threading.Thread(target=run_command, args=("sleep 300",),
                     kwargs=dict(cwd=sys.argv[1], timeout=120,
                                 on_start=lambda pid: (print(pid, flush=True), first.set())))
t.start()
first.wait()
old = _warden._proc.pid
os.kill(old, signal.SIGKILL)  # the warden dies; the next todo's start replaces it
_warden._proc.wait()
t2 = threading.Thread(target=run_command, args=("sleep 300",),
                      kwargs=dict(cwd=sys.argv[1], timeout=120,
                                  on_start=lambda pid: print(pid, flush=True)))
t2.start()
t.join()
"""


def test_a_warden_that_died_is_replaced_and_still_covers_the_running_todos(
        tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", REPLACED_SCRIPT, str(tmp_path)],
                              stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert worker.stdout is not None
        first = int(worker.stdout.readline())
        second = int(worker.stdout.readline())
        for pgid in (first, second):
            wait_until(lambda pgid=pgid: any("sleep" in p.name() for p in group_members(pgid)))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert_group_gone(first)  # started under the old warden, known to the new one
        assert_group_gone(second)
    finally:
        worker.kill()
        worker.wait()


def test_a_todo_s_command_never_waits_for_the_warden(tmp_path: Path) -> None:
    """``wait`` with no argument waits for the shell's own children: the warden is
    the worker's child, not the todo's."""
    r = run("wait; echo done", tmp_path, timeout=10)
    assert r.ok and r.stdout_tail == "done\n"
    assert r.duration < 5


# -- one warden for the processes a worker forks ------------------------------------------

SHARED_SCRIPT = """
import os, subprocess, sys, threading
from workers.execute import GUARD_ENV, _warden, adopt_warden, run_command, shared_warden

channels = shared_warden(2)
assert len(channels) == 2, channels
warden = __import__("workers.execute", fromlist=["_shared"])._shared[0].pid
pids = []
for i, fd in enumerate(channels):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker process: its channel only
        for later in channels[i + 1:]:  # (the earlier ones are closed already)
            os.close(later)
        os.close(r)
        adopt_warden(fd)
        started = threading.Event()
        threading.Thread(target=run_command, args=("sleep 300",), daemon=True,
                         kwargs=dict(cwd=sys.argv[1], timeout=120, on_start=lambda pgid: (
                             os.write(w, b"%d " % pgid), started.set()))).start()
        started.wait()
        if i == 1:  # and a spawn it dies before registering: found by its token
            token = _warden.token()
            p = subprocess.Popen(["/bin/sh", "-c", "sleep 300 & sleep 300; wait"],
                                 env=dict(os.environ, **{GUARD_ENV: token.decode()}),
                                 start_new_session=True, cwd=sys.argv[1])
            os.write(w, b"%d" % p.pid)
        os.close(w)
        threading.Event().wait()
    os.close(fd)  # the process's now
    os.close(w)
    pids.append(pid)
    with os.fdopen(r, "rb") as f:
        print(pid, f.read().decode(), flush=True)
print(warden, flush=True)
for pid in pids:
    os.waitpid(pid, 0)
"""


def test_one_warden_covers_every_forked_process_each_todo_killed_with_its_process(
        tmp_path: Path) -> None:
    """A worker of several processes starts one warden for all of them (not one each):
    a process's death kills its todos only, a registered one's group and a spawn it
    died before registering (found by its token: the prefix the process said first);
    the warden ends with the last of them."""
    parent = subprocess.Popen([sys.executable, "-c", SHARED_SCRIPT, str(tmp_path)],
                              stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert parent.stdout is not None
        (first, first_group), (second, second_group, unregistered) = (
            map(int, parent.stdout.readline().split()) for _ in range(2))
        warden = int(parent.stdout.readline())
        for pgid in (first_group, second_group, unregistered):
            wait_until(lambda pgid=pgid: any("sleep" in p.name() for p in group_members(pgid)),
                       what=lambda pgid=pgid: f"sleeps in {_describe(group_members(pgid))}")
        # one warden, the parent's child: no process started its own
        assert {c.pid for c in psutil.Process(parent.pid).children()} == {first, second,
                                                                          warden}
        os.kill(first, signal.SIGKILL)
        assert_group_gone(first_group)
        assert group_members(second_group) and group_members(unregistered), \
            "the other process's todos went with the first"
        assert psutil.Process(warden).status() != psutil.STATUS_ZOMBIE
        os.kill(second, signal.SIGKILL)
        assert_group_gone(second_group)
        assert_group_gone(unregistered)
        wait_until(lambda: not psutil.pid_exists(warden)
                   or psutil.Process(warden).status() == psutil.STATUS_ZOMBIE,
                   what=lambda: "the warden still runs with no channel left")
        parent.wait(10)
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True) if parent.poll(
                ) is None else []:
            with contextlib.suppress(psutil.Error):
                child.kill()
        parent.kill()
        parent.wait()
