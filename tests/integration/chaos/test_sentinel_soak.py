"""Soak: 1,000 todos on a Sentinel-managed Redis whose master is SIGKILLed ten times.

One master, two replicas, three sentinels (``tests/integration/sentinel_bed.py``), a
`coord worker` per repo. Each kill is followed by the failover, the killed server
rejoining as a replica, and dispatch resuming; the next kill comes once the
sentinels may fail over again. Checked: the sweep succeeds, every todo ran, no repo
ever ran more todos at once than its concurrency, no two runs of one todo overlap,
every run has its start in the surviving master's ledger, every run after a todo's
first is a lost run the ledger records, every worker lives (and met each failover with
coord's own broker channel: no message dumped into a file), and dispatch resumes (a
todo's outcome recorded again) within 15 s of each failover: of the kill, or of the last
failover the sentinels then made on their own (on a loaded machine, down-after 1 s, they
may flap). Printed (``-s``): the p95 from a kill to dispatch resumed, for the README's
fault table.

And a shorter soak (issue #39, "Tests and figures"): 300 todos on the same bed whose
master keeps running while both its replicas are SIGKILLed for a stretch, then started
again. Checked: todos go on with no replica up (at least ``ALONE_RUNS`` of them run start
to end before the replicas come back; 0.3 started none: every start waited for a
replica), and on once they are back; the sweep succeeds; the same ledger, slot and
overlap checks as above, whatever the sentinels did meanwhile: no todo lost (each ran to
its end), none run twice unless the ledger records a lost run for each re-run, and never
two runs of one todo at once; with no failover, no run lost at all. Each worker said it
went on with no replica, and that it waits for them again.
Printed: how many todos ran with no replica up, and how long after the kill the first
of them ran.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordination.dispatch.app import SENTINEL_SCHEME
from tests.integration.helpers import Cluster, T, read_lines, wait_until
from tests.integration.sentinel_bed import FAILOVER_TIMEOUT_MS, SentinelBed, cluster_over

KILLS = 10
N = 1000
REPOS = {"a": 2, "b": 2, "c": 2}
#: Seconds from a start's event to its command running (the replica wait included), at most;
#: and the slack between the event's clock and the command's (one machine: none).
GRANT_TO_RUN, CLOCKS = 10.0, 0.05
#: Each run logs its start and its end; a run stopped by its worker (SIGTERM to its
#: group, its lease lost) logs when, so every run's span is known.
SOAK = ("trap 'echo killed $(date +%s.%N) >> $COORD_TODO_ID.log; exit 143' TERM; "
        "echo start $(date +%s.%N) >> $COORD_TODO_ID.log; sleep 0.2; "
        "echo end $(date +%s.%N) >> $COORD_TODO_ID.log")
#: The replica stretch's soak: todos, and the runs that must start and end while no
#: replica is up before they are started again.
STRETCH_N, ALONE_RUNS = 300, 30


@pytest.fixture
def soak_cluster(bed: SentinelBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A :class:`Cluster` on ``bed`` (workers' and sentinels' logs printed if the test
    fails). A failover takes ~1-3 s here: a running todo's lease (6 s) outlives it."""
    yield from cluster_over(bed, tmp_path, monkeypatch, request, lease_ttl="6",
                            logs_unless_passed=True)


@pytest.mark.timeout(600)
def test_soak_1000_todos_with_the_master_sigkilled_ten_times(
        bed: SentinelBed, soak_cluster: Cluster) -> None:
    _soak(soak_cluster, bed)


def _swept(c: Cluster, todos: dict[str, str]) -> tuple[str, float, Callable[[], int]]:
    """The soak's ``todos`` (id -> repo) in the catalog, a worker per repo, the sweep
    started: its id, when it started, and how many of its todos have ended so far."""
    c.write_catalog(REPOS, [T(tid, repo, SOAK) for tid, repo in todos.items()])
    c.start_workers(REPOS, timeout=60)
    sid = c.start_sweep()
    t0 = time.time()
    sweep_key = c.rt.keys.sweep(sid)

    def ended() -> int:
        return int(c.rt.redis.hget(sweep_key, "terminal") or 0)

    return sid, t0, ended


def _soak(c: Cluster, bed: SentinelBed) -> None:
    names = list(REPOS)
    sid, t0, ended = _swept(c, {f"TODO-{i:04d}": names[i % len(names)] for i in range(N)})
    resumed: list[float] = []  # from each kill
    settled: list[float] = []  # from the last failover it set off (the kill, when only one)
    wait_until(lambda: ended() > 20, 60, "the sweep to get going")
    for _ in range(KILLS):
        before = ended()
        assert before < N, f"the sweep ended after {len(resumed)} kills: make its todos longer"
        old = bed.kill_master()
        killed = time.time()
        last = {"master": bed.wait_failover(old), "at": killed}
        bed.rejoin(old)

        def going_again() -> bool:
            # Under load the sentinels (down-after 1 s) may demote the new master too,
            # and again: coord is timed from the last master they named.
            m = bed.master_port()
            if m is not None and m != last["master"]:
                last.update(master=m, at=time.time())
            return ended() > before

        wait_until(going_again, 60, "dispatch to resume after the failover", interval=0.05)
        resumed.append(time.time() - killed)
        settled.append(time.time() - last["at"])
        print(f"kill {len(resumed)}: resumed {resumed[-1]:.1f} s after it, "
              f"{settled[-1]:.1f} s after the last failover")
        wait_until(lambda: len(bed.healthy_replicas()) == 2, 60, "two replicas again")
        # The sentinels fail over the same master again only after 2 x failover-timeout.
        time.sleep(max(0.0, killed + 2 * FAILOVER_TIMEOUT_MS / 1000 + 0.5 - time.time()))
    st = c.wait_sweep(sid, timeout=300)
    took = time.time() - t0
    assert st["status"] == "succeeded", {k: v for k, v in st.items() if k != "todos"}
    assert len(st["todos"]) == N and all(v["status"] == "succeeded" for v in st["todos"].values())

    reruns, _ = _check_runs(c, sid, st["todos"])
    assert all(w.alive() for w in c.workers), "a worker died"
    # Every failover met by coord's own broker channel, the first as the last: kombu
    # takes the transport from each sentinel's URL as it moves on to it, and under its
    # own channel what a worker held and could not put back was dumped into files of
    # the temporary directory ("EMERGENCY DUMP STATE"), about 15 a run.
    said = "".join(f.read_text(errors="replace") for f in c.logs.glob("worker-*.log"))
    schemes = re.findall(r"Connected to ([\w+-]+)://", said)
    assert len(schemes) > len(c.workers), "no worker reconnected: were there failovers?"
    assert set(schemes) == {SENTINEL_SCHEME}, sorted(set(schemes))
    assert "EMERGENCY DUMP STATE" not in said
    # A todo running at a connection loss runs on (its lease holds): said in a line, not
    # as Celery's failed cancel's traceback (about 38 a run; workers/app.py's filter).
    assert "does not implement kill_job" not in said
    resumed.sort()
    p95 = resumed[min(len(resumed) - 1, int(0.95 * len(resumed)))]
    # The bound, per failover: from the kill, or from the last of the failovers
    # the sentinels made after it on their own (each a fault coord rides out).
    assert max(settled) < 15, (settled, resumed)
    print(f"\nSENTINEL SOAK {N} todos, {KILLS} master SIGKILLs ({bed.failovers()} failovers): "
          f"{took:.1f} s, "
          f"dispatch resumed after p50 {resumed[len(resumed) // 2]:.1f} s / p95 {p95:.1f} s "
          f"/ max {resumed[-1]:.1f} s from the kill, max {max(settled):.1f} s from the last "
          f"failover, {reruns} re-runs")


@pytest.mark.timeout(300)
def test_soak_todos_go_on_with_every_replica_sigkilled_for_a_stretch(
        bed: SentinelBed, soak_cluster: Cluster) -> None:
    """Issue #39, "Tests and figures": the master's replicas all SIGKILLed while todos
    run, for as long as it takes ``ALONE_RUNS`` todos to run start to end, then started
    again. 0.3 waited for a replica to confirm each start: none ran until they were
    back (each start lost, its todo failed "as poison")."""
    c, names = soak_cluster, list(REPOS)
    todos = {f"TODO-{i:04d}": names[i % len(names)] for i in range(STRETCH_N)}
    sid, t0, ended = _swept(c, todos)
    wait_until(lambda: ended() > 20, 60, "the sweep to get going")
    assert len(bed.healthy_replicas()) == 2, bed.healthy_replicas()
    killed_ports = bed.kill_replicas()
    killed = time.time()
    assert len(killed_ports) == 2, killed_ports
    # Runs begun since the kill and ended. Those of starts granted before it (at most one
    # per slot, confirmed then) aside, ALONE_RUNS more must follow: the ledger says
    # below which starts were granted after the kill.
    slots = sum(REPOS.values())
    alone: dict[str, tuple[float, float, str]] = {}

    def ran_alone() -> bool:
        for tid, repo in todos.items():
            if tid not in alone:
                done = [s for s in _spans(c.repo_dir(repo) / f"{tid}.log")
                        if s[0] >= killed and s[2] == "end"]
                if done:
                    alone[tid] = done[0]
        return len(alone) >= ALONE_RUNS + slots

    try:
        wait_until(ran_alone, 60, f"{ALONE_RUNS} + {slots} todos to run start to end with no "
                   "replica up", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(alone)} did") from None
    back = time.time()
    # Still none up (so each of those runs began and ended without one), and still
    # todos to run once they are back.
    assert bed.healthy_replicas() == [], bed.healthy_replicas()
    assert ended() < STRETCH_N, "the sweep ended with no replica up: give it more todos"
    bed.revive(killed_ports)
    wait_until(lambda: len(bed.healthy_replicas()) == 2, 60, "both replicas in sync again")
    synced, before = time.time(), ended()
    assert before < STRETCH_N, "the sweep ended before the replicas were back: more todos"
    wait_until(lambda: ended() > before, 60, "todos to go on with the replicas back",
               interval=0.05)
    again = time.time() - synced
    st = c.wait_sweep(sid, timeout=240)
    took = time.time() - t0
    assert st["status"] == "succeeded", {k: v for k, v in st.items() if k != "todos"}
    assert len(st["todos"]) == STRETCH_N and all(
        v["status"] == "succeeded" for v in st["todos"].values()), st["todos"]

    # Whatever the sentinels did: every todo ran to its end, a re-run only after a lost
    # run the ledger records, never two runs of one todo at once (_check_runs).
    reruns, lost = _check_runs(c, sid, st["todos"])
    failovers = bed.failovers()
    if failovers == 0:
        # No failover: nothing could lose a start or a run, so none ran twice.
        assert (reruns, lost) == (0, 0), (reruns, lost)
    assert all(w.alive() for w in c.workers), "a worker died"
    for w in c.workers:  # each said it went on alone, and that it waits for them again
        log = w.log_text()
        assert "has no replica online" in log, log[-3000:]
        assert "replica(s) online again: writes wait for them" in log, log[-3000:]
    # The runs of starts granted after the kill (its todo's latest todo.started before
    # the run is later than the kill) that ended before the replicas came back.
    grants: dict[str, list[float]] = {}
    for ev in c.events(sid):
        if ev["kind"] == "todo.started":
            grants.setdefault(ev["todo_id"], []).append(float(ev["ts"]))
    within = sorted((begun, end) for tid, (begun, end, _) in alone.items() if end <= back
                    and max((g for g in grants.get(tid, []) if g <= begun + CLOCKS),
                            default=0.0) >= killed)
    assert len(within) >= ALONE_RUNS, (len(within), within)
    resumed = within[0][0] - killed
    # The bound a failover has (see the soak above): here the master waits
    # REPLICA_GONE_AFTER (5 s) for replicas gone before it goes on alone.
    assert resumed < 15, f"the first start with no replica up ran {resumed:.1f} s after the kill"
    print(f"\nSENTINEL REPLICA STRETCH {STRETCH_N} todos, both replicas SIGKILLed for "
          f"{back - killed:.1f} s (in sync again {synced - back:.1f} s after their restart, "
          f"a todo ended {again:.1f} s after that): "
          f"{len(within)} todos started and ended with no replica up, the first of them ran "
          f"{resumed:.1f} s after the kill; {took:.1f} s in all, {failovers} failovers, "
          f"{reruns} re-runs, {lost} lost runs")


def _check_runs(c: Cluster, sid: str, todos: dict[str, dict[str, str]]
                ) -> tuple[int, int]:
    """Check every todo's runs (its ``$COORD_TODO_ID.log``) against the ledger; the
    runs after a todo's first (re-runs) and the lost runs the ledger records."""
    # No todo lost: each ran to its end at least once. Every run was granted by a start
    # the surviving master knows (a start a failover dropped would let a second run take
    # its slot); every run of a todo after its first follows a lost run the ledger
    # records (its own: the todo.lost after the run before began, before this one
    # began); and no two runs of a todo overlap (each run's end is known: its end, or
    # its worker's SIGTERM).
    lost: dict[str, list[float]] = {}
    started: dict[str, list[float]] = {}
    for e in c.events(sid):
        if e["kind"] == "todo.lost" and e.get("reason") != "lease lost":
            lost.setdefault(e["todo_id"], []).append(float(e["ts"]))
        elif e["kind"] == "todo.started":
            started.setdefault(e["todo_id"], []).append(float(e["ts"]))
    reruns = 0
    for repo, conc in REPOS.items():
        points: list[tuple[float, int]] = []
        for tid, v in todos.items():
            if v["repo"] != repo:
                continue
            spans = _spans(c.repo_dir(repo) / f"{tid}.log")
            assert spans, f"{tid} never ran"
            assert any(how == "end" for _, _, how in spans), (f"{tid} never ran to its end",
                                                             spans)
            assert all(how for _, _, how in spans), (f"{tid}: a run whose end is not known",
                                                     spans)
            assert _granted(spans, started.get(tid, [])), (tid, spans, started.get(tid))
            assert _explained(spans, lost.get(tid, [])), (
                f"{tid} ran again with no lost run in the ledger before it", spans,
                lost.get(tid))
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (
                f"two runs of {tid} at once", spans)
            reruns += len(spans) - 1
            points += [p for s, e, _ in spans for p in ((s, 1), (e, -1))]
        points.sort()
        cur = peak = 0
        for _, d in points:
            cur += d
            peak = max(peak, cur)
        assert peak <= conc, (repo, peak, conc)  # never two holders of one slot
    return reruns, sum(len(ts) for ts in lost.values())


def _explained(spans: list[tuple[float, float, str]], lost: list[float]) -> bool:
    """Does each run after a todo's first follow a lost run of its own in the ledger (a
    ``todo.lost`` after the run before it began, not after it began itself; each lost
    run explains one re-run)?"""
    left = sorted(lost)
    for before, run in zip(spans, spans[1:]):
        fits = [t for t in left if before[0] - CLOCKS <= t <= run[0] + CLOCKS]
        if not fits:
            return False
        left.remove(fits[0])
    return True


def _granted(spans: list[tuple[float, float, str]], starts: list[float]) -> bool:
    """Does each run follow its own ``todo.started`` (at most ``GRANT_TO_RUN`` s before
    it)? A start may have no run (its worker gave up waiting for a replica to confirm
    it); a run with no start is a grant the failover lost."""
    left = sorted(starts)
    for begun, _, _ in sorted(spans):
        fits = [t for t in left if begun - GRANT_TO_RUN <= t <= begun + CLOCKS]
        if not fits:
            return False
        left.remove(fits[-1])
    return True


def _spans(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, how) of each run: how it ended, ``end`` or ``killed`` (its worker's
    SIGTERM); "" when that is not known (it ends at its start then, and
    :func:`_check_runs` refuses it)."""
    out: list[tuple[float, float, str]] = []
    start: float | None = None
    for line in read_lines(path):
        kind, ts = line.split()
        if kind == "start":
            if start is not None:
                out.append((start, start, ""))
            start = float(ts)
        elif start is not None:
            out.append((start, float(ts), kind))
            start = None
    if start is not None:
        out.append((start, start, ""))
    return out
