"""The shared context's store (coordination.runtime.shared_context) on fakeredis: values
by scope, TTL, the per-scope cap with least-recently-used eviction in the order of use
(a read moves a key to the back), hit/miss/eviction counts, and the seal."""

from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest

from coordination.keys import Keys
from coordination.runtime.shared_context import ContextRefused, ContextStore, scope_of
from coordination.trust.signing import Policy

pytestmark = pytest.mark.timeout(60)
S = scope_of("sweep", "SW-1")


def store(cap: int = 1000, keys: tuple[str, ...] = ()) -> ContextStore:
    r = fakeredis.FakeRedis()
    return ContextStore(r, Keys("t"), max_keys=cap, policy=Policy(keys, False, False))


def test_set_get_delete_and_scopes_apart() -> None:
    c = store()
    assert c.set(S, "build", json.dumps({"v": 1})) == []
    assert json.loads(c.get(S, "build") or "") == {"v": 1}
    assert c.get(scope_of("plan", "SW-1"), "build") is None  # another scope
    assert c.delete(S, "build") and c.get(S, "build") is None
    assert not c.delete(S, "build")


def test_the_least_recently_used_goes_first_and_a_read_counts_as_use() -> None:
    c = store(cap=3)
    for k in ("a", "b", "c"):
        c.set(S, k, "1")
    assert c.get(S, "a") == "1"  # a is now the most recent: b is the oldest
    assert c.set(S, "d", "1") == ["b"]
    assert c.set(S, "c", "2") == []  # replacing a key evicts nothing (and uses it)
    assert c.set(S, "e", "1") == ["a"]
    assert [e["key"] for e in c.entries(S)] == ["d", "c", "e"]
    assert c.get(S, "b") is None
    assert c.stats() == {"hits:sweep": 1, "misses:sweep": 1, "evictions:sweep": 2,
                         "hits:plan": 0, "misses:plan": 0, "evictions:plan": 0}


def test_an_expired_key_makes_room_without_counting_an_eviction() -> None:
    c = store(cap=2)
    c.set(S, "short", "1", ttl=60)
    c.set(S, "long", "1")
    c.r.delete(c.keys.context_value(S, "short"))  # as its TTL would
    assert c.set(S, "new", "1") == []
    assert c.stats()["evictions:sweep"] == 0
    assert [e["key"] for e in c.entries(S)] == ["long", "new"]


def test_a_ttl_is_kept_and_listed() -> None:
    c = store()
    c.set(S, "k", '"v"', ttl=30)
    (e,) = c.entries(S)
    assert e["value"] == "v" and e["ttl"] is not None and 0 < e["ttl"] <= 30
    assert 0 < c.r.pttl(c.keys.context_value(S, "k")) <= 30_000


def test_values_are_sealed_and_a_forged_or_copied_one_is_refused() -> None:
    c = store(keys=("k1",))
    c.set(S, "a", "1")
    raw = json.loads(c.r.get(c.keys.context_value(S, "a")))
    assert raw["sig"].startswith("v1:") and raw["kid"]
    # copied to another key: its seal binds it to "a"
    c.r.set(c.keys.context_value(S, "b"), json.dumps(raw))
    c.r.zadd(c.keys.context_lru(S), {"b": 99})
    with pytest.raises(ContextRefused, match="'b'.*signature invalid"):
        c.get(S, "b")
    # written without the key
    c.r.set(c.keys.context_value(S, "a"), json.dumps({"value": "2", "at": 0}))
    with pytest.raises(ContextRefused, match="unsigned"):
        c.get(S, "a")
    with pytest.raises(ContextRefused):
        c.entries(S)


def test_a_todos_value_is_sealed_with_its_runs_key_and_bound_to_that_run() -> None:
    from coordination.trust.runkeys import RunId, run_key
    from coordination.trust.signing import key_id

    run = RunId("SW-1", "TODO-001", 1, "PLAN-1")
    asked: list[RunId] = []

    def runs(rid: RunId, what: str) -> str | None:
        asked.append(rid)
        return f"{what}: ran again" if rid.run < 1 else None

    c = store(keys=("k1",))
    c.runs = runs
    c.set(S, "a", "1", by=run)
    c.set(scope_of("plan", "PLAN-1"), "a", "2", by=run)
    raw = json.loads(c.r.get(c.keys.context_value(S, "a")))
    assert raw["by"] == run.document() and raw["kid"] == key_id(run_key("k1", run))
    assert c.get(S, "a") == "1" and c.get(scope_of("plan", "PLAN-1"), "a") == "2"
    assert asked == [run, run]
    # an earlier run's value (its todo ran again since): refused by the run check
    c.set(S, "old", "0", by=RunId("SW-1", "TODO-001", 0, "PLAN-1"))
    with pytest.raises(ContextRefused, match="ran again"):
        c.get(S, "old")
    # moved to another sweep's scope, or named another run: refused
    other = scope_of("sweep", "SW-2")
    c.r.set(c.keys.context_value(other, "a"), json.dumps(raw))
    with pytest.raises(ContextRefused, match="signature invalid"):
        c.get(other, "a")
    c.r.set(c.keys.context_value(S, "a"), json.dumps({**raw, "by": {**raw["by"], "run": 2}}))
    with pytest.raises(ContextRefused, match="does not hold|signature invalid"):
        c.get(S, "a")
    # a todo's record sealed with its run's key, put in another sweep's scope with a
    # seal made for it there: bound to its own scopes only
    from coordination.trust.evidence import EvidenceKind, seal
    from coordination.runtime.shared_context import about

    body = {"value": "1", "at": 0, "by": run.document()}
    c.r.set(c.keys.context_value(other, "b"), json.dumps(
        seal(EvidenceKind.context, about(other, "b"), body, (run_key("k1", run),))))
    with pytest.raises(ContextRefused, match="writes only the scopes sweep:SW-1"):
        c.get(other, "b")


def test_metrics_expose_hits_misses_and_evictions_by_scope(tmp_path: Path) -> None:
    from tests.unit.support.metrics import scrape, three, value
    from tests.unit.support.sweeps import fresh_runtime

    rt = fresh_runtime()
    c = rt.shared_context()
    c.max_keys = 1
    plan = scope_of("plan", "PLAN-1")
    c.set(S, "a", "1")
    c.get(S, "a")
    c.get(S, "zz")
    c.get(plan, "zz")
    c.set(S, "b", "1")  # evicts a
    s = scrape(rt, three(tmp_path / "eco"))
    assert value(s, "coord_context_hits_total", scope="sweep") == 1
    assert value(s, "coord_context_misses_total", scope="sweep") == 1
    assert value(s, "coord_context_misses_total", scope="plan") == 1
    assert value(s, "coord_context_evictions_total", scope="sweep") == 1
    assert value(s, "coord_context_evictions_total", scope="plan") == 0
