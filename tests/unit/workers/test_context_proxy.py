"""A todo's `coord context`, answered by its worker (workers/context_proxy.py), over its real
Unix socket (the runtime on fakeredis): a run proves itself with its token, writes only
its own scopes (sealed with its run's key), reads what passes its checks; a command left
behind after its run ended is answered no more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.cli.context_client import ProxiedContext
from coordination.errors import OperationFailed, UsageError
from coordination.runtime.context import Runtime
from coordination.runtime.shared_context import ContextRefused
from coordination.trust.runkeys import CONTEXT_SOCKET_ENV, RUN_TOKEN_ENV, RunId, run_key
from tests.unit.support.processes import dead_pid
from tests.unit.support.sweeps import fresh_runtime
from workers.context_proxy import ContextProxy

pytestmark = pytest.mark.timeout(60)

RUN = RunId("SW-1", "TODO-001", 0, "PLAN-1")


@pytest.fixture
def signing_rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("COORD_SIGNING_KEY", "k" * 32)
    rt = fresh_runtime()
    yield rt
    from coordination.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def service() -> Iterator[ContextProxy]:
    """A context service of its own, closed after the test (its socket and thread)."""
    served = ContextProxy()
    yield served
    served.close()
    assert served._thread is None


def test_a_run_sets_and_reads_its_own_scopes_sealed_with_its_key(
        signing_rt: Runtime, service: ContextProxy, tmp_path: Path) -> None:
    # a real sweep of the run's (a value of a run whose sweep record is gone is refused)
    from tests.unit.support.sweeps import PLAN, start, stub_dispatching, write_catalog

    sid = start(stub_dispatching(signing_rt),
                write_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}]))
    run = RunId(sid, "TODO-001", 0, PLAN)
    mine, plan = f"sweep:{sid}", f"plan:{PLAN}"
    token, env = service.serve(signing_rt, run)
    assert env == {CONTEXT_SOCKET_ENV: service.path, RUN_TOKEN_ENV: token}
    assert token == run_key("k" * 32, run)  # the key derived for its run, no other
    todo = ProxiedContext(service.path, token)
    assert todo.set(mine, "build", '{"v":1}', ttl=60) == []
    assert todo.set(plan, "channel", '"beta"') == []
    assert todo.get(mine, "build") == '{"v":1}'
    assert [e["key"] for e in todo.entries(plan)] == ["channel"]
    stored = json.loads(signing_rt.redis.get(signing_rt.keys.context_value(mine, "build")))
    assert stored["by"] == run.document() and stored["sig"].startswith("v1:")
    # the operator's store (the signing key) reads it as the run's
    assert signing_rt.shared_context().get(mine, "build") == '{"v":1}'
    with pytest.raises(UsageError, match="writes only its own scopes"):
        todo.set("sweep:SW-2", "build", "1")
    with pytest.raises(UsageError, match="writes only its own scopes"):
        todo.delete("plan:PLAN-2", "x")
    # the sweep's record gone (a writer's DEL, or expired): its run's value is refused
    signing_rt.redis.delete(signing_rt.keys.sweep(sid))
    with pytest.raises(ContextRefused, match="that sweep's record is gone from Redis"):
        todo.get(mine, "build")
    assert todo.delete(mine, "build") is True


def test_a_forged_value_is_refused_to_the_todo(signing_rt: Runtime, service: ContextProxy) -> None:
    token, _ = service.serve(signing_rt, RUN)
    signing_rt.redis.set(signing_rt.keys.context_value("sweep:SW-1", "v"),
                    json.dumps({"value": '"6.6.6"', "at": 0}))
    with pytest.raises(ContextRefused, match="unsigned"):
        ProxiedContext(service.path, token).get("sweep:SW-1", "v")


def test_a_token_no_run_holds_is_answered_no_more(signing_rt: Runtime, service: ContextProxy) -> None:
    token, _ = service.serve(signing_rt, RUN)
    service.forget(token)
    with pytest.raises(OperationFailed, match="no run of this worker holds that token"):
        ProxiedContext(service.path, token).get("sweep:SW-1", "x")
    with pytest.raises(OperationFailed, match="no run"):
        ProxiedContext(service.path, "0" * 64).get("sweep:SW-1", "x")


def test_sockets_left_by_processes_gone_are_removed_and_no_other(tmp_path: Path) -> None:
    """What a SIGKILLed worker process (or, before 0.7, every forked one: they end by
    os._exit) left in the socket directory goes when the next process starts serving:
    only a `<pid>.sock` of no running process that no one listens on."""
    import os
    import socket

    from workers.context_proxy import remove_stale

    def left_behind(name: str) -> Path:
        path = tmp_path / name
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(path))  # bound, then closed without unlinking: what a kill leaves
        return path

    stale = [left_behind(f"{dead_pid()}.sock") for _ in range(2)]
    own = left_behind("7.sock")  # this process's own name: never touched
    alive_pid = left_behind(f"{os.getpid()}.sock")  # a running process's id: kept
    other = tmp_path / "notes.txt"
    other.write_text("not a socket of ours")
    odd = left_behind("12ab.sock")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:  # a process of another pid namespace sharing the directory: it still listens
        shared = tmp_path / f"{dead_pid()}.sock"
        listening.bind(str(shared))
        listening.listen(1)
        assert remove_stale(tmp_path, own.name) == 2
        assert not any(p.exists() for p in stale)
        assert own.exists() and alive_pid.exists() and other.exists() and odd.exists()
        assert shared.exists()
    finally:
        listening.close()
    shared.unlink()
    # at most so many a start: a backlog of thousands never holds one up for long
    more = [left_behind(f"{dead_pid()}.sock") for _ in range(3)]
    assert remove_stale(tmp_path, own.name, limit=2) == 2
    assert sum(p.exists() for p in more) == 1


def test_a_forked_worker_process_leaving_removes_its_socket(
        signing_rt: Runtime, service: ContextProxy) -> None:
    """A worker process forked by a worker of several repos or an embedded sweep ends by
    os._exit (no exit handler): leave() is what removes its socket."""
    service.serve(signing_rt, RUN)
    sock = Path(service.path)
    assert sock.exists()
    service.leave()
    assert not sock.exists()
    service.leave()  # twice: nothing more to do
