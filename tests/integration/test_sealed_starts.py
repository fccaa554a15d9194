"""A todo starts on its predecessors' sealed outcomes, never their plain statuses (#59).

The start script (``todo_start.lua``) reads each predecessor's status, which anyone with
Redis can write; Lua cannot check a seal. So the worker that won the start checks each
predecessor's outcome seal (status, exit code, the run that ended it) before the command
runs, holding the todo's lease; one that fails ends the todo ``failed`` unrun, naming the
record.

The attack of the 0.5 campaign, on real workers: the tests (TODO-001) are running and
will fail; a keyless writer (redis-py, no key) sets their checkpoint ``succeeded``; the
supervision pass finds the release (TODO-002) ready and sends it. The release must not
run: under the levels strategy, eager, ``--sequential`` and ``--merge-chains``, and with
the workers under their per-repo ACL users (``coord acl``), the writer being another
repo's worker user who sends the release's message itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from tests.integration.helpers import PLAN, Cluster, T, todo_processes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "integration-sealed-starts-signing-key"


def plan(cluster: Cluster, gate: Path, test_repo: str = "a", release_repo: str = "a") -> None:
    """TODO-001 (the tests) runs until ``gate`` is there, then fails; TODO-002 (the
    release) comes after it."""
    repos = {test_repo: 2} | ({release_repo: 1} if release_repo != test_repo else {})
    cluster.write_catalog(repos, [
        T("TODO-001", test_repo, f"while [ ! -f {gate} ]; do sleep 0.05; done; exit 1"),
        T("TODO-002", release_repo, "touch released", blocked_by=["TODO-001"]),
    ])


def forge_success(raw: redis.Redis, cluster: Cluster, sid: str) -> None:
    """The writer says the running tests succeeded (their checkpoint rewritten)."""
    from coordination.runtime.sweep_fields import todo_field

    where, field = cluster.rt.keys.sweep(sid), todo_field("TODO-001")
    cp = json.loads(raw.hget(where, field) or "{}")
    cp.update(status="succeeded", exit_code=0, finished_at=cp.get("started_at"))
    raw.hset(where, field, json.dumps(cp))


def refused_release(cluster: Cluster, sid: str, gate: Path, release_repo: str = "a", *,
                    supervised: bool = True) -> dict[str, Any]:
    """The release ends failed unrun, naming the tests' outcome record; the sweep ends
    failed (when a supervision pass runs: the tests' forged end was counted by none)."""
    release = cluster.wait_todo(sid, "TODO-002", {"succeeded", "failed", "skipped"},
                                timeout=60)
    gate.touch()
    record = f"outcome record of TODO-001 in sweep {sid}"
    assert release["status"] == "failed", release
    assert release["reason"].startswith("not run: a predecessor's outcome was refused: "), \
        release
    assert record in release["reason"], release
    assert not (cluster.repo_dir(release_repo) / "released").exists()  # never ran
    failed = [e for e in cluster.events(sid)
              if e["kind"] == "todo.failed" and e.get("todo_id") == "TODO-002"]
    assert failed and failed[-1].get("refused") is True, failed
    if not supervised:
        return release
    st = cluster.wait_sweep(sid, timeout=60)
    assert st["status"] == "failed", st
    # (the tests' command, still running when the sweep ended, is stopped with it)
    wait_until(lambda: not todo_processes(sid, "TODO-001"), 30, "the tests to stop")
    return st


@pytest.mark.parametrize("how", [["--strategy", "levels"], ["--strategy", "eager"],
                                 ["--sequential"], ["--merge-chains"]],
                         ids=["levels", "eager", "sequential", "merge-chains"])
def test_a_forged_success_of_running_tests_never_starts_the_release(
        cluster: Cluster, how: list[str]) -> None:
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    raw = redis.Redis.from_url(cluster.redis_url)
    gate = cluster.root / "tests-may-end"
    plan(cluster, gate)
    cluster.start_workers(["a"])
    sid = cluster.cli_json("plan", "sweep", PLAN, *how)["sweep_id"]
    cluster.wait_todo(sid, "TODO-001", {"running"}, timeout=60)
    forge_success(raw, cluster, sid)
    st = refused_release(cluster, sid, gate)
    assert "unsigned" in st["todos"]["TODO-002"]["reason"], st["todos"]["TODO-002"]


def test_a_sweep_whose_success_is_forged_does_not_end_succeeded(cluster: Cluster) -> None:
    """The only todo runs; the writer says it succeeded: the sweep ends ``failed``,
    naming the outcome record it would have ended ``succeeded`` on."""
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    gate = cluster.root / "may-end"
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", f"while [ ! -f {gate} ]; do sleep 0.05; done")])
    cluster.start_workers(["a"])
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"}, timeout=60)
    forge_success(redis.Redis.from_url(cluster.redis_url), cluster, sid)
    st = cluster.wait_sweep(sid, timeout=60)
    gate.touch()
    assert st["status"] == "failed", st
    assert st["reason"].startswith("not a success: "), st
    assert f"outcome record of TODO-001 in sweep {sid}" in st["reason"], st


def _url(cluster: Cluster, user: str, password: str) -> str:
    parts = urlsplit(cluster.redis_url)
    return f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path}"


@pytest.fixture
def acl_users(cluster: Cluster) -> Any:
    """Workers' users of repos ``tests`` and ``release`` (coord acl --apply); removed after."""
    gate = cluster.root / "tests-may-end"
    plan(cluster, gate, "tests", "release")
    doc = cluster.cli_json("acl", "--apply")
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        yield doc["created"], gate
    finally:
        for u in doc["users"]:
            admin.execute_command("ACL", "DELUSER", u["user"])
        admin.close()


def test_another_repos_worker_user_cannot_start_the_release_either(
        cluster: Cluster, acl_users: tuple[dict[str, str], Path]) -> None:
    """Workers under their own ACL users, no supervision pass; the tests' repo's worker
    user forges the tests' success and sends the release's message to the release's
    queue (which its user may write): the release's worker refuses it."""
    created, gate = acl_users
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1", COORD_SUPERVISE="0")
    urls = {r: _url(cluster, f"coord-worker-{r}", created[f"coord-worker-{r}"])
            for r in ("tests", "release")}
    for repo in ("tests", "release"):
        cluster.start_worker(repo, redis_url=urls[repo])
    sid = cluster.cli_json("plan", "sweep", PLAN, "--strategy", "eager")["sweep_id"]
    cluster.wait_todo(sid, "TODO-001", {"running"}, timeout=60)
    writer = redis.Redis.from_url(urls["tests"])
    forge_success(writer, cluster, sid)
    send_as(urls["tests"], sid, "TODO-002")
    refused_release(cluster, sid, gate, "release", supervised=False)


def send_as(url: str, sid: str, todo: str) -> None:
    """Queue and send ``todo`` of ``sid`` with coord's own code, as the holder of ``url``
    (no signing key)."""
    from coordination.dispatch import sender
    from coordination.runtime.context import Runtime
    from coordination.settings import Settings
    from coordination.sweeps.sending import send_todos
    from coordination.sweeps.spec_store import load_spec

    rt = Runtime.create(Settings(redis_url=url))
    sender(rt)  # wired as a process that sends is
    spec = load_spec(rt, sid)
    assert spec is not None
    sent: Callable[[], list[str]] = lambda: send_todos(rt, spec, [todo], reason="forged")
    assert wait_until(sent, 10, "the release to be sent") == [todo]
