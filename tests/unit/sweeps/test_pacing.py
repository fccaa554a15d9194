"""Pacing: the rate string, the buckets a spec freezes, and the start script's token
bucket (on fakeredis and a real redis-server: the script must agree on both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from coordination.catalog.models import Catalog, Pace, parse_rate
from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.runtime.transitions import StartVerdict, Transitions
from coordination.sweeps.pacing import Pacer, remote_host
from coordination.sweeps.reading import todo_entry

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("pc")


@pytest.mark.parametrize("text,want", [("10/hour", (10, 3600.0)), ("5/10s", (5, 10.0)),
                                       ("5 / 4 seconds", (5, 4.0)), ("100/day", (100, 86400.0)),
                                       ("1/1.5m", (1, 90.0))])
def test_rates(text: str, want: tuple[int, float]) -> None:
    assert parse_rate(text) == want


@pytest.mark.parametrize("text,says", [("ten/hour", "COUNT/PERIOD"), ("10/fortnight", "units"),
                                       ("0/hour", "at least 1"), ("1/40d", "30 days"),
                                       ("10", "COUNT/PERIOD")])
def test_bad_rates_say_what_a_rate_looks_like(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Pace(rate=text)


def test_a_catalog_with_a_bad_pace_names_the_field(tmp_path: Path) -> None:
    from coordination.catalog.file.store import CatalogStore
    from coordination.errors import CoordError

    f = tmp_path / "ecosystem.yaml"
    f.write_text("version: 1\nrepos:\n  - name: api\n    pace: {key: repo, rate: fast}\n")
    with pytest.raises(CoordError) as exc:
        CatalogStore(f).load()
    text = str(exc.value) + str(getattr(exc.value, "hint", ""))
    assert "ecosystem.yaml:4: repos[0].pace.rate" in text and "10/hour" in text, text


def _catalog(**plan_pace: Any) -> Catalog:
    return Catalog.model_validate({
        "version": 1,
        "repos": [{"name": "api", "tags": ["svc", "py"], "pace": {"rate": "2/s"}},
                  {"name": "web"}],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "p", **({"pace": plan_pace} if plan_pace else {})}],
            "todos": [{"id": "TODO-001", "task": "a", "repo": "api", "plan": "PLAN-001", "run": "true"},
                      {"id": "TODO-002", "task": "b", "repo": "web", "plan": "PLAN-001", "run": "true"}]},
    })


def test_buckets_by_key_and_the_slower_pace_holds(tmp_path: Path) -> None:
    cat = _catalog(key="repo", rate="1/s", burst=3)
    p = Pacer(cat)
    assert p.todo(cat.todo("TODO-001"), "PLAN-001", tmp_path) == ["repo:api"]  # type: ignore[arg-type]
    assert p.todo(cat.todo("TODO-002"), "PLAN-001", tmp_path) == ["repo:web"]  # type: ignore[arg-type]
    # api: the plan's 1/s burst 3 and the repo's 2/s burst 1 -> 1 s apart, burst 1
    assert p.paces == {"repo:api": [1.0, 1], "repo:web": [1.0, 3]}
    cat = _catalog(key="tag", rate="10/m")
    p = Pacer(cat)
    assert p.todo(cat.todo("TODO-001"), "PLAN-001", tmp_path) == ["repo:api", "tag:py", "tag:svc"]  # type: ignore[arg-type]
    assert p.todo(cat.todo("TODO-002"), "PLAN-001", tmp_path) == ["tag:"]  # type: ignore[arg-type]


def test_host_is_read_from_the_checkouts_git_config(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:org/api.git\n')
    assert remote_host(tmp_path) == "github.com"
    (tmp_path / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://tok@GitLab.example.com:8443/org/api.git\n')
    assert remote_host(tmp_path) == "gitlab.example.com"
    assert remote_host(tmp_path / "nowhere") == "local"


def _start(r: redis.Redis, todo: str, pace: list[tuple[str, float, int]]) -> Any:
    return Transitions(r, KEYS, lease_ttl=30).start(
        "S", todo, repo="api", concurrency=10, preds=[], worker="w", pace=pace)


def test_the_start_takes_a_token_or_says_when_one_is_due(r: redis.Redis) -> None:
    CheckpointStore(r, KEYS).create_sweep("S", {"status": "running"})
    pace = [("repo:api", 60.0, 2)]
    assert _start(r, "A", pace).verdict == StartVerdict.started
    assert _start(r, "B", pace).verdict == StartVerdict.started  # burst 2
    sec, usec = r.time()
    now = int(sec) + int(usec) / 1e6
    st = _start(r, "C", pace)
    assert st.verdict == StartVerdict.paced
    assert now + 55 < float(st.detail) < now + 65
    cp = CheckpointStore(r, KEYS).get("S", "C") or {}
    assert cp.get("status") in (None, "pending", "queued")
    assert "paced" in str(cp.get("reason")) and "repo:api" in str(cp.get("reason"))
    entry = todo_entry({**cp, "status": "queued"}, "api")
    assert entry.get("starts_at") and entry["reason"] == cp["reason"]
    # A refused start holds no lease slot, and its first refusal is in the ledger.
    assert not any(k for k in r.keys(f"{KEYS.namespace}:lease:*") if r.get(k) and "C" in k)
    evs = [e for e in EventLog(r, KEYS).read("S") if e.todo_id == "C"]
    assert [e.kind for e in evs] == ["todo.queued"] and evs[0].data["paced_until"]
    # Asking again before the token is due: refused again, no second event.
    assert _start(r, "C", pace).verdict == StartVerdict.paced
    assert len([e for e in EventLog(r, KEYS).read("S") if e.todo_id == "C"]) == 1
    # Another sweep drawing from the same bucket is paced too (the bucket is not the sweep's).
    CheckpointStore(r, KEYS).create_sweep("S2", {"status": "running"})
    st2 = Transitions(r, KEYS, lease_ttl=30).start("S2", "A", repo="api", concurrency=10,
                                                   preds=[], worker="w", pace=pace)
    assert st2.verdict == StartVerdict.paced
    # Without the bucket it starts at once; a due token lets it start and clears the note.
    r.delete(KEYS.pace("repo:api"))
    assert _start(r, "C", pace).verdict == StartVerdict.started
    cp = CheckpointStore(r, KEYS).get("S", "C") or {}
    assert cp.get("paced_until") is None and cp.get("reason") is None


def test_all_buckets_or_none(r: redis.Redis) -> None:
    CheckpointStore(r, KEYS).create_sweep("S", {"status": "running"})
    assert _start(r, "A", [("tag:b", 60.0, 1)]).verdict == StartVerdict.started
    before = r.get(KEYS.pace("tag:a"))
    assert _start(r, "B", [("tag:a", 60.0, 1), ("tag:b", 60.0, 1)]).verdict == StartVerdict.paced
    assert r.get(KEYS.pace("tag:a")) == before  # tag:a's token was not taken
    reason = str((CheckpointStore(r, KEYS).get("S", "B") or {}).get("reason"))
    assert reason == "paced: waiting for a token of tag:b", reason  # only the empty one
    assert _start(r, "C", [("tag:a", 60.0, 1)]).verdict == StartVerdict.started


def test_the_web_views_feed_says_when_a_paced_todo_starts() -> None:
    from coordination.runtime.context import Runtime
    from coordination.settings import Settings
    from coordination.ui.feeds import render

    rt = Runtime.create(Settings(), client=fakeredis.FakeRedis(decode_responses=True))
    rt.checkpoints.create_sweep("S", {"status": "running"})
    rt.events.emit("todo.queued", sweep_id="S", todo_id="TODO-1", paced_until=123.5,
                   reason="paced: waiting for a token of repo:api")
    rt.events.emit("todo.queued", sweep_id="S", todo_id="TODO-2")
    msgs, _over = render(rt, "S", rt.events.read("S"))
    data = {m.data["todo"]: m.data for m in msgs}
    assert data["TODO-1"]["paced_until"] == 123.5 and "paced_until" not in data["TODO-2"]
