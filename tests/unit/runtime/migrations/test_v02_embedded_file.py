"""What coord 0.2 kept beside a catalog (embedded sweeps in an ``archive`` table,
history in ``runs`` and ``todos``, one SQLite file) is carried over to the catalog's
server once: every sweep, event and run appears once, a second carry-over writes
nothing, a failed one marks nothing and the next completes it.

The file is built here with 0.2's own schema (copied from coord 0.2: the code that
wrote it is gone) and rows exported from a server as 0.2's ``archive.export`` did;
the unit tier carries it over into fakeredis, and one test goes through the real
embedded server of a `coord` process."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import fakeredis
import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.migrations import v02_embedded_file
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.history.search import search
from coordination.runtime.history import RedisHistory
from coordination.runtime.migrations.v02_embedded_file import carry_over, old_file
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)
K = Keys("coord")
DAY = 86400.0
LIMITS = {"retention_days": 7.0, "history_days": 90.0, "events_maxlen": 1000}

#: coord 0.2's tables, as it created them (runtime/archive.py and runtime/history.py).
SCHEMA_02 = """
CREATE TABLE IF NOT EXISTS archive (
    sweep_id TEXT PRIMARY KEY, created_at REAL, saved_at REAL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS archive_created ON archive (created_at);
CREATE TABLE IF NOT EXISTS runs (
    sweep_id TEXT NOT NULL, run INTEGER NOT NULL, plan TEXT, sweep_kind TEXT, status TEXT,
    reason TEXT, started_at REAL, finished_at REAL, counts TEXT, todos INTEGER, repos TEXT,
    PRIMARY KEY (sweep_id, run));
CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished_at);
CREATE TABLE IF NOT EXISTS todos (
    sweep_id TEXT NOT NULL, run INTEGER NOT NULL, plan TEXT, todo_id TEXT NOT NULL, repo TEXT,
    title TEXT, status TEXT, attempts INTEGER, exit_code INTEGER, duration REAL, worker TEXT,
    reason TEXT, output_tail TEXT, finished_at REAL,
    PRIMARY KEY (sweep_id, run, todo_id));
CREATE INDEX IF NOT EXISTS todos_finished ON todos (finished_at);
"""


def client() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def exported(r: redis.Redis, sweep_id: str) -> dict[str, object]:
    """One sweep as 0.2's ``archive.export`` kept it: its hash, index score, stream."""
    return {"record": r.hgetall(K.sweep(sweep_id)), "score": r.zscore(K.sweeps, sweep_id),
            "events": r.xrange(K.sweep_events(sweep_id), "-", "+")}


def ended_sweep(r: redis.Redis, sweep_id: str, status: str, finished: float) -> dict[str, object]:
    """A sweep run to its end on a 0.2 process's server, exported."""
    store, events = CheckpointStore(r, K), EventLog(r, K)
    store.create_sweep(sweep_id, {"plan": "PLAN-001", "status": "running",
                                  "created_at": finished - 60})
    r.zadd(K.sweeps, {sweep_id: finished - 60})
    events.emit("sweep.queued", sweep_id=sweep_id)
    store.set_fields(sweep_id, "TODO-001", status="succeeded", exit_code=0, has_tail=True)
    r.hset(K.sweep(sweep_id), "o:TODO-001", "flux capacitor warmed\n")
    events.emit("todo.succeeded", sweep_id=sweep_id, todo_id="TODO-001")
    r.hset(K.sweep(sweep_id), mapping={"status": json.dumps(status),
                                       "finished_at": json.dumps(finished)})
    events.emit("sweep.finished", sweep_id=sweep_id, status=status)
    return exported(r, sweep_id)


def write_02_file(catalog: Path, sweeps: dict[str, dict[str, object]],
                  runs: list[tuple[dict[str, object], list[dict[str, object]]]]) -> Path:
    """``.<catalog>.coord.history.sqlite`` as coord 0.2 wrote it (WAL, its tables)."""
    path = catalog.parent / f".{catalog.name}.coord.history.sqlite"
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_02)
    for sid, data in sweeps.items():
        db.execute("INSERT INTO archive VALUES (?, ?, ?, ?)",
                   [sid, data["score"] or 0.0, time.time(), json.dumps(data)])
    for sweep, todos in runs:
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [sweep["sweep_id"], sweep["run"], "PLAN-001", "plan", sweep["status"],
                    sweep.get("reason"), sweep["finished_at"] - 60, sweep["finished_at"],
                    json.dumps(sweep["counts"]), len(todos),
                    "\n".join(sorted({str(t["repo"]) for t in todos}))])
        for t in todos:
            db.execute("INSERT INTO todos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [sweep["sweep_id"], sweep["run"], "PLAN-001", t["todo_id"], t["repo"],
                        t["title"], t["status"], 1, 0 if t["status"] == "succeeded" else 3,
                        2.5, "host:1", t.get("reason"), t.get("tail", ""),
                        sweep["finished_at"]])
    db.close()
    return path


def a_run(sweep_id: str, run: int, finished: float, *todos: tuple[str, str, str, str]
          ) -> tuple[dict[str, object], list[dict[str, object]]]:
    rows = [{"todo_id": tid, "repo": repo, "status": st, "title": f"do {tid}", "tail": tail}
            for tid, repo, st, tail in todos]
    counts: dict[str, int] = {}
    for t in rows:
        counts[str(t["status"])] = counts.get(str(t["status"]), 0) + 1
    status = "failed" if "failed" in counts else "succeeded"
    return ({"sweep_id": sweep_id, "run": run, "status": status, "finished_at": finished,
             "counts": counts, "reason": "TODO-002 failed" if status == "failed" else None},
            rows)


@pytest.fixture
def old(tmp_path: Path) -> tuple[Path, float]:
    """A catalog with a 0.2 file: sweeps S-NEW (ended yesterday), S-GONE (ended 30 days
    ago, past a 7-day retention) and a 0.1-era row S-OLD; history of three runs."""
    catalog = tmp_path / "ecosystem.yaml"
    catalog.write_text("version: 1\n")
    now = time.time()
    r = client()
    sweeps = {"S-NEW": ended_sweep(r, "S-NEW", "failed", now - DAY),
              "S-GONE": ended_sweep(r, "S-GONE", "succeeded", now - 30 * DAY)}
    sweeps["S-OLD"] = {  # coord 0.1's layout: a hash per checkpoint, eager counts apart
        "record": {"status": '"running"', "plan": '"PLAN-001"', "run": "0"},
        "score": now - 2 * DAY, "events": [],
        "checkpoints": {"T1": {"status": '"succeeded"', "attempts": "1", "output_tail": '"ok"'}},
        "remaining": {"T3": "1"},
    }
    write_02_file(catalog, sweeps, [
        a_run("S-NEW", 0, now - DAY, ("TODO-001", "api", "succeeded", "flux capacitor warmed"),
              ("TODO-002", "web", "failed", "connection refused")),
        a_run("S-NEW", 1, now - DAY / 2, ("TODO-002", "web", "succeeded", "")),
        a_run("S-GONE", 0, now - 30 * DAY, ("TODO-001", "api", "succeeded", "")),
    ])
    return catalog, now


def everything(r: redis.Redis) -> dict[str, object]:
    """Every key and its content (the marker aside)."""
    out: dict[str, object] = {}
    for key in sorted(r.keys("*")):
        if key == K.migrated_02:
            continue
        kind = r.type(key)
        out[key] = {"hash": lambda: r.hgetall(key), "zset": lambda: r.zrange(key, 0, -1, withscores=True),
                    "stream": lambda: r.xrange(key), "string": lambda: r.get(key)}[kind]()
    return out


def test_sweeps_events_and_history_are_carried_over_once(old: tuple[Path, float]) -> None:
    catalog, now = old
    path = old_file(catalog)
    r = client()
    done = carry_over(r, K, catalog, **LIMITS)
    assert done is not None
    assert (done["sweeps"], done["expired"], done["runs"]) == (2, 1, 3)

    store = CheckpointStore(r, K)
    rec = store.get_sweep("S-NEW")
    assert rec is not None and (rec["status"], rec["plan"]) == ("failed", "PLAN-001")
    assert store.get("S-NEW", "TODO-001") == {"status": "succeeded", "exit_code": 0,
                                             "output_tail": "flux capacitor warmed\n"}
    assert [s["id"] for s in store.list_sweeps()] == ["S-NEW", "S-OLD"]  # newest first
    # An ended sweep keeps what is left of its retention; one past it is not carried.
    assert 5 * DAY < r.ttl(K.sweep("S-NEW")) <= 6 * DAY
    assert 5 * DAY < r.ttl(K.sweep_events("S-NEW")) <= 6 * DAY
    assert store.get_sweep("S-GONE") is None
    # A 0.1-era row: its checkpoints moved into the one hash.
    assert store.get("S-OLD", "T1") == {"status": "succeeded", "attempts": 1, "output_tail": "ok"}
    assert r.hget(K.sweep("S-OLD"), "r:T3") == "1" and r.ttl(K.sweep("S-OLD")) == -1

    events = EventLog(r, K)
    kinds = ["sweep.queued", "todo.succeeded", "sweep.finished"]
    assert [e.kind for e in events.read("S-NEW")] == kinds
    # The merged view (`coord events`) finds the sweep through the global stream,
    # which holds its own events only, as EventLog.emit writes them.
    assert [e.kind for e in events.read()] == kinds
    assert [e.kind for e in events._replay(K.events, "0-0")] == ["sweep.queued", "sweep.finished"]

    history = RedisHistory(r, K, days=90)
    found = search(history, "connection refused")
    assert [(x["sweep_id"], x["run"], x["todo_id"]) for x in found] == [("S-NEW", 0, "TODO-002")]
    runs = search(history, "", kind="sweep")
    assert [(x["sweep_id"], x["run"], x["status"]) for x in runs] == [
        ("S-NEW", 1, "succeeded"), ("S-NEW", 0, "failed"), ("S-GONE", 0, "succeeded")]
    assert runs[1]["counts"] == {"succeeded": 1, "failed": 1}
    assert runs[1]["repos"] == ["api", "web"] and runs[1]["reason"] == "TODO-002 failed"

    # Marked after the writes, the file set aside (renamed, never deleted or written).
    assert json.loads(r.get(K.migrated_02) or "{}")["runs"] == 3
    assert not path.exists()
    kept = path.with_name(path.name + ".migrated")
    assert kept.exists() and not path.with_name(path.name + "-wal").exists()
    assert sqlite3.connect(str(kept)).execute("SELECT COUNT(*) FROM archive").fetchone() == (3,)

    # Once: the next process has nothing to carry over.
    before = everything(r)
    assert carry_over(r, K, catalog, **LIMITS) is None
    assert everything(r) == before


def test_a_second_carry_over_of_the_same_file_writes_nothing(old: tuple[Path, float]) -> None:
    """Two processes that both read the file before either marked it (a race), or an
    attempt after a failure: each sweep, event and run is written once between them,
    and a sweep changed since it was carried over is not overwritten."""
    catalog, _now = old
    path = old_file(catalog)
    copy = path.with_name("copy.sqlite")
    shutil.copy(path, copy)
    r = client()
    assert carry_over(r, K, catalog, **LIMITS) is not None
    r.hset(K.sweep("S-NEW"), "status", '"rolled_back"')  # changed since
    before = everything(r)
    r.delete(K.migrated_02)
    shutil.copy(copy, path)  # the file as the other process read it
    again = carry_over(r, K, catalog, **LIMITS)
    assert again is not None
    assert (again["sweeps"], again["events"], again["runs"]) == (0, 0, 0)
    assert everything(r) == before
    assert (CheckpointStore(r, K).get_sweep("S-NEW") or {})["status"] == "rolled_back"


def test_a_failed_carry_over_marks_nothing_and_the_next_completes_it(
        old: tuple[Path, float], monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, _now = old
    path = old_file(catalog)
    r = client()

    def cut(self: RedisHistory, runs: object) -> int:
        raise redis.ConnectionError("the server went away")

    with monkeypatch.context() as m:
        m.setattr(RedisHistory, "record_all", cut)
        with pytest.raises(redis.ConnectionError):
            carry_over(r, K, catalog, **LIMITS)
    assert r.get(K.migrated_02) is None and path.exists()  # nothing lost, nothing marked
    assert CheckpointStore(r, K).get_sweep("S-NEW") is not None  # written before the cut
    done = carry_over(r, K, catalog, **LIMITS)
    assert done is not None and (done["sweeps"], done["runs"]) == (0, 3)
    assert r.get(K.migrated_02) is not None and not path.exists()
    assert len(search(RedisHistory(r, K, days=90), "", kind="sweep")) == 3
    assert [e.kind for e in EventLog(r, K).read("S-NEW")] == [
        "sweep.queued", "todo.succeeded", "sweep.finished"]


def test_events_of_a_sweep_run_since_are_merged_in_id_order(old: tuple[Path, float]) -> None:
    """A server that ran a sweep before carrying the file over holds later events: the
    carried ones go before them, and the global stream stays in id order."""
    catalog, _now = old
    r = client()
    EventLog(r, K).emit("sweep.queued", sweep_id="S-LATER")
    carry_over(r, K, catalog, **LIMITS)
    ids = [e.id for e in EventLog(r, K)._replay(K.events, "0-0")]
    assert len(ids) == 3 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert [e.sweep_id for e in EventLog(r, K).read()].count("S-NEW") == 3
    assert EventLog(r, K).read()[-1].sweep_id == "S-LATER"


def test_a_file_that_comes_back_after_its_carry_over_is_left_alone(
        old: tuple[Path, float]) -> None:
    catalog, _now = old
    path = old_file(catalog)
    copy = path.with_name("copy.sqlite")
    shutil.copy(path, copy)
    r = client()
    carry_over(r, K, catalog, **LIMITS)
    before = everything(r)
    shutil.copy(copy, path)  # back, while its .migrated twin is there
    assert carry_over(r, K, catalog, **LIMITS) is None
    assert everything(r) == before
    assert path.exists() and path.with_name(path.name + ".migrated").exists()


def test_no_file_no_question_to_redis(tmp_path: Path) -> None:
    class Untouchable(redis.Redis):
        def execute_command(self, *args: object, **options: object) -> object:
            raise AssertionError(f"asked Redis {args}")

    assert carry_over(Untouchable(), K, tmp_path / "ecosystem.yaml", **LIMITS) is None


def test_the_first_coord_command_carries_a_catalog_over(tmp_path: Path) -> None:
    """Through a real `coord` process on the catalog's own embedded server."""
    catalog = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    now = time.time()
    r = client()
    write_02_file(catalog, {"S-NEW": ended_sweep(r, "S-NEW", "failed", now - DAY)},
                  [a_run("S-NEW", 0, now - DAY, ("TODO-001", "api", "failed", "flux capacitor"))])
    path = old_file(catalog)

    def listed() -> list[tuple[str, str]]:
        got = coord(catalog, "sweep", "list", "--json")
        assert got.returncode == 0, got.stderr
        return [(row["sweep_id"], row["status"]) for row in json.loads(got.stdout)]

    assert listed() == [("S-NEW", "failed")]
    assert not path.exists() and path.with_name(path.name + ".migrated").exists()
    found = coord(catalog, "history", "search", "flux", "--json")
    assert found.returncode == 0, found.stderr
    assert [(x["sweep_id"], x["todo_id"]) for x in json.loads(found.stdout)] == [
        ("S-NEW", "TODO-001")]
    assert listed() == [("S-NEW", "failed")]  # once


def test_only_the_migration_knows_the_old_file() -> None:
    root = Path(__file__).resolve().parents[4] / "coordination"
    knowing = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "coord.history.sqlite" in p.read_text(encoding="utf-8")
                     or "import sqlite3" in p.read_text(encoding="utf-8"))
    # history search's ranking (0.5) uses SQLite's FTS5 in memory only: no file
    assert knowing == ["runtime/migrations/v02_embedded_file.py", "stats/relevance.py"], knowing
    ranking = (root / "stats" / "relevance.py").read_text(encoding="utf-8")
    assert ranking.count("sqlite3.connect(") == ranking.count('sqlite3.connect(":memory:")') == 2
    assert "coord.history.sqlite" not in ranking
    assert v02_embedded_file.old_file("/x/eco.yaml").name == ".eco.yaml.coord.history.sqlite"
