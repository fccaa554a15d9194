"""``COORD_REDIS_URL=sentinel://...``: one master, two replicas, three sentinels (real
servers, ``tests/integration/sentinel_bed.py``), real ``coord worker`` processes.

A bad sentinel URL is refused (exit 2) without its password; a sweep rides out its
master SIGKILLed mid-todo (the waiting CLI and the worker reach the new master with
no restart) and, after that, a forced ``SENTINEL FAILOVER`` that demotes a live master
(``READONLY``/``UNBLOCKED`` under the worker's connections: celery#7946); the same
over TLS-only servers and sentinels (``ssl=true``).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, Cluster, T, read_lines, wait_until
from tests.integration.sentinel_bed import (
    MASTER,
    PASSWORD,
    SENTINEL_PASSWORD,
    SentinelBed,
    cluster_over,
    make_pki,
)
from tests.servers import free_port

pytestmark = pytest.mark.timeout(180)

LOGGED = ("echo start $(date +%s.%N) >> $COORD_TODO_ID.log; sleep {s}; "
          "echo end $(date +%s.%N) >> $COORD_TODO_ID.log")


@pytest.fixture
def sentinel_cluster(bed: SentinelBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     request: pytest.FixtureRequest) -> Iterator[Cluster]:
    # A lease outlives a failover and the surviving replica re-linking to the new master
    # (until then no renewal is confirmed): the running todo rides it out. On a loaded
    # machine the bed's 1 s down-after can make the sentinels fail over twice in a row:
    # a finish written to the master the second one demotes is lost with it, and is
    # written again on the next only while the lease still lives there; the old master
    # follows the new one at the sentinels' next look (up to 10 s). 20 s outlives both.
    yield from cluster_over(bed, tmp_path, monkeypatch, request, lease_ttl="20")


@pytest.fixture
def lone_bed(tmp_path: Path) -> Iterator[SentinelBed]:
    """A master with one replica (after a failover: none), three sentinels."""
    b = SentinelBed(tmp_path / "bed", replicas=1)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def lone_cluster(lone_bed: SentinelBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> Iterator[Cluster]:
    yield from cluster_over(lone_bed, tmp_path, monkeypatch, request, lease_ttl="8")


def _get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
            return str(res.read().decode()) if res.status == 200 else None
    except OSError:
        return None


def test_a_bad_sentinel_url_is_refused_without_its_password(tmp_path: Path) -> None:
    c = Cluster(tmp_path, "redis://127.0.0.1:1/0")
    c.write_catalog({"a": 1}, [T("TODO-001", "a", "true")])
    secret = "pw-never-shown"
    for url, says in [
        (f"sentinel://:{secret}@127.0.0.1:26379/0", "needs ?master=NAME"),
        (f"sentinel://:{secret}@127.0.0.1:26379,/0?master=m", "empty host"),
        (f"sentinel://:{secret}@127.0.0.1:99999/0?master=m", "port must be"),
        (f"sentinel://:{secret}@h:1/0?master=m&ssl_cert_reqs=none", "without ssl=true"),
        (f"sentinel://:{secret}@h:1/x?master=m", "database must be"),
    ]:
        c.env["COORD_REDIS_URL"] = url
        res = c.cli("sweep", "list")
        assert res.returncode == 2, (url, res.stderr)
        assert says in res.stderr and secret not in res.stderr + res.stdout, res.stderr


def test_a_sweep_rides_out_a_killed_master_and_a_forced_failover(
        sentinel_cluster: Cluster, bed: SentinelBed) -> None:
    c = sentinel_cluster
    c.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=3)),
                               T("TODO-002", "a", LOGGED.format(s=0.2), blocked_by=["TODO-001"])])
    # The sentinels' password or the master's name wrong: said so, in one line each.
    for env, says in [({"COORD_SENTINEL_PASSWORD": "not-it"}, "refused COORD_SENTINEL_PASSWORD"),
                      ({"COORD_REDIS_URL": bed.url.replace(MASTER, "nope")},
                       "name no master 'nope'")]:
        res = subprocess.run(c.argv("sweep", "list"), cwd=ROOT, env={**c.env, **env},
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and says in res.stderr, res.stderr
        assert "not-it" not in res.stderr and PASSWORD not in res.stderr
    (w,) = c.start_workers(["a"])
    port = free_port()
    c.popen("ui", "--port", str(port))
    wait_until(lambda: _get(port, "/api/sweeps") is not None, 60, "the web view")
    waiter = c.popen("plan", "sweep", "PLAN-001", "--wait", "--json")
    sid = wait_until(lambda: (c.rt.checkpoints.list_sweeps(1) or [{}])[0].get("id"), 30,
                     "the sweep")
    c.wait_todo(sid, "TODO-001", {"running"})
    # What the sentinels say (coord doctor's sentinel facts): all three, two replicas.
    from coordination.connection.sentinel import sentinel_facts

    facts = wait_until(lambda: (f := sentinel_facts(bed.url)).sentinels == 3 and f, 30,
                       "the sentinels to know each other", interval=0.2)
    assert (facts.replicas, facts.replicas_down, facts.quorum, facts.quorum_ok) == (2, 0, 2, True)
    # coord doctor says the same (this bed keeps no data on disk: it exits 1 for that).
    res = c.cli("doctor", "--json")
    found = {f["check"]: f for f in json.loads(res.stdout)["findings"]}
    assert found["redis.sentinel"]["level"] == "ok", found["redis.sentinel"]
    assert "2 replica(s) in sync, 3 sentinels, quorum 2" in found["redis.sentinel"]["message"]
    assert found["redis.role"]["level"] != "problem" if "redis.role" in found else True
    old = bed.kill_master()
    killed = time.time()
    new = bed.wait_failover(old)
    # The new master, its one replica in sync again, the killed one down.
    wait_until(lambda: (f := sentinel_facts(bed.url)).address == f"127.0.0.1:{new}"
               and (f.replicas, f.replicas_down) == (1, 1), 30,
               "the sentinels to name the new master and its replicas", interval=0.2)
    out, err = waiter.communicate(timeout=90)
    assert waiter.returncode == 0, err[-3000:]
    st = json.loads(out)
    assert st["status"] == "succeeded", st
    for tid in ("TODO-001", "TODO-002"):
        starts = [x for x in read_lines(c.repo_dir("a") / f"{tid}.log") if x.startswith("start")]
        assert len(starts) == 1, (tid, starts)  # the running todo rode the failover out
    assert w.alive()
    # The web view, started before the failover, reads the new master by itself.
    page = wait_until(lambda: _get(port, f"/api/sweeps/{sid}"), 30, "the web view to answer")
    assert '"succeeded"' in page, page[:500]
    print(f"\nRECOVERY sentinel failover (master SIGKILLed), sweep done after "
          f"{time.time() - killed:.1f} s")
    # Where the URL is shown, its password is not.
    shown = c.cli("sweep", "list", "--json")
    assert shown.returncode == 0, shown.stderr
    assert PASSWORD not in shown.stderr + w.log_text()
    assert SENTINEL_PASSWORD not in w.log_text()

    # A forced failover demotes a live master under the worker's connections.
    bed.rejoin(old)
    wait_until(lambda: len(bed.healthy_replicas()) == 2, 30, "the old master back as a replica")
    current = bed.master_port()
    bed.client(bed.sentinel_ports[0], SENTINEL_PASSWORD).execute_command(
        "SENTINEL", "FAILOVER", MASTER)
    bed.wait_failover(current)  # type: ignore[arg-type]
    # A sweep started while the switch is under way can be written where the failover
    # drops it (a CLI's writes wait for no replica; a --wait would say it vanished): the
    # next one starts once the old master follows the new one and both replicas are in sync.
    wait_until(lambda: len(bed.healthy_replicas()) == 2, 30, "the switch to settle",
               interval=0.1)
    sid2 = c.cli_json("todo", "run", "TODO-002")["sweep_id"]
    st2 = c.wait_sweep(sid2, timeout=60)
    assert st2["status"] == "succeeded", st2
    assert st2["todos"]["TODO-002"]["worker"].startswith(w.hostname_prefix)
    assert w.alive(), w.log_text()[-3000:]
    assert "Unrecoverable error" not in w.log_text()


def test_a_sweep_over_tls_sentinels_and_servers(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """ssl=true: coord's clients, the broker and the worker's start check speak TLS to the
    sentinels and the master (the servers and sentinels listen on TLS ports only)."""
    b = SentinelBed(tmp_path / "bed", tls=make_pki(tmp_path / "pki"))
    c = Cluster(tmp_path / "cluster", b.url)
    c.env.update(b.env())
    for k, v in b.env().items():
        monkeypatch.setenv(k, v)
    from coordination.connection import client
    from coordination.settings import get_settings

    get_settings.cache_clear()
    try:
        c.write_catalog({"a": 1}, [T("TODO-001", "a", "echo ran > ran.txt")])
        c.start_workers(["a"])
        st = c.cli_json("plan", "sweep", "PLAN-001", "--wait")
        assert st["status"] == "succeeded", st
        assert (c.repo_dir("a") / "ran.txt").read_text() == "ran\n"
    except BaseException:
        print(c.log_tails())
        raise
    finally:
        c.close()
        b.close()
        client._real_clients.pop(b.url, None)
        get_settings.cache_clear()


def test_a_master_left_without_replicas_keeps_running_todos_and_says_so(
        lone_cluster: Cluster, lone_bed: SentinelBed) -> None:
    """Issue #39 items 1, 16 and 2. 0.3: a master with no replica (here: the one a
    failover promoted, its only replica gone) started no todo (each start raised
    NotReplicated), the todo reached lost_runs=2 without ever running and then failed
    "as poison": "its worker died 3 times while running it". Now it runs, with a
    warning in the worker's log, coord_redis_replicas 0 and coord doctor. And two of
    three sentinels gone is no quorum: coord doctor exits 1 and names CKQUORUM."""
    c, bed = lone_cluster, lone_bed
    c.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=0.1))])
    (w,) = c.start_workers(["a"])
    first = c.cli_json("plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
    assert first["status"] == "succeeded", first
    old = bed.kill_master()
    bed.wait_failover(old)
    wait_until(lambda: bed.healthy_replicas() == [] and bed.master_port() not in (None, old),
               30, "the promoted replica alone")
    res = c.cli("plan", "sweep", "PLAN-001", "--again", "--wait", "--json", timeout=120)
    st = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0 and st.get("status") == "succeeded", (res.stderr[-3000:], st,
                                                                    w.log_text()[-3000:])
    cp = c.checkpoint(st["sweep_id"], "TODO-001")
    assert not cp.get("lost_runs"), cp  # it never started unconfirmed, never "died"
    starts = [x for x in read_lines(c.repo_dir("a") / "TODO-001.log") if x.startswith("start")]
    assert len(starts) == 2, starts  # once per sweep
    log = w.log_text()
    assert "NotReplicated" not in log, log[-3000:]
    assert "has no replica online" in log and "a failover now would lose them" in log, log[-3000:]
    assert w.alive()
    # The gauge says it too.
    port = free_port()
    c.popen("metrics", "--port", str(port))
    page = wait_until(lambda: _get(port, "/metrics"), 60, "coord metrics")
    assert "\ncoord_redis_replicas 0.0\n" in page, page[-2000:]
    # coord doctor: a warning for the replica (workers go on), no problem of sentinels.
    found = [f for f in json.loads(c.cli("doctor", "--json").stdout)["findings"]
             if f["check"] == "redis.sentinel"]
    assert [f["level"] for f in found] == ["warning", "ok"], found
    assert "no replica in sync" in found[0]["message"], found
    # Two of three sentinels gone: no quorum, no failover. A problem (0.3: exit 0).
    bed.kill_sentinels(2)
    res = c.cli("doctor", "--json")
    found = [f for f in json.loads(res.stdout)["findings"] if f["check"] == "redis.sentinel"]
    problems = [f for f in found if f["level"] == "problem"]
    assert res.returncode == 1 and problems, found
    assert "no quorum" in problems[0]["message"] and "CKQUORUM" in problems[0]["fix"], problems


def test_a_master_that_never_had_a_replica_runs_todos(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      request: pytest.FixtureRequest) -> None:
    """Issue #39 item 1 as reported: a Sentinel-managed master with no replica at all.
    0.3: every start raised NotReplicated, `plan sweep --wait` ended failed ("its worker
    died 3 times while running it") and the todo never ran."""
    bed = SentinelBed(tmp_path / "bed", replicas=0)
    cluster = cluster_over(bed, tmp_path, monkeypatch, request, lease_ttl="8")
    try:
        c = next(cluster)
        c.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=0.1))])
        (w,) = c.start_workers(["a"])
        st = c.cli_json("plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
        assert st["status"] == "succeeded", (st, w.log_text()[-3000:])
        assert "NotReplicated" not in w.log_text()
        assert "has no replica online" in w.log_text()
    finally:
        cluster.close()
        bed.close()
