"""The web view knows changes (fakeredis runtime, Starlette's TestClient): /api/changes and
/api/changes/PLAN serve `coord change status --json`'s document; a change plan's plan,
sweep and overview documents carry its change's state (a plan whose sweep failed but
whose change landed reads `landed`, not "active 0/N"); a finished sweep lists its waves:
one that succeeded, one whose last wave halted it (failed), and a rolled-back one (from
its events)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from coordination.catalog.file.store import CatalogStore
from coordination.change.reading import status_document
from coordination.runtime.change_records import StepRecord
from coordination.runtime.changes import RepoRecord
from coordination.runtime.context import Runtime
from coordination.ui.app import create_app
from coordination.ui.changes import summary
from tests.unit.support.sweeps import PLAN, run_sweep, write_catalog

pytestmark = pytest.mark.timeout(60)

#: The contract's keys (coord change status --json), which the page renders.
CONTRACT = {"plan", "branch", "land", "state", "reason", "order", "train", "repos", "landable",
            "blockers", "verify", "gates", "sweep"}
SHA = {"api": "a" * 40, "web": "b" * 40}


def change_catalog(root: Path) -> Path:
    """PLAN-001 lands a change over api and web: an edit in each, a verify todo, a gate;
    PLAN-002 is a plain plan. The checkouts are no git repos: a sweep of the change fails."""
    eco = write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": "true", "commit": "edit api"},
        {"id": "TODO-002", "repo": "web", "run": "true", "commit": "edit web"},
        {"id": "TODO-003", "repo": "web", "run": "true", "verify": True,
         "blocked_by": ["TODO-001", "TODO-002"]},
        {"id": "TODO-004", "repo": "web", "gate": {"approvals": 1}, "blocked_by": ["TODO-003"]},
    ], repos=("api", "web"))
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["plans"][0]["change"] = {"branch": "chg", "land": "push"}
    doc["coordination"]["plans"].append({"id": "PLAN-002", "title": "plain", "status": "active"})
    doc["coordination"]["todos"].append(
        {"id": "TODO-005", "task": "plain", "repo": "api", "plan": "PLAN-002", "run": "true"})
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco


def candidates(rt: Runtime, root: Path) -> None:
    for repo, sha in SHA.items():
        rt.changes.set_repo(PLAN, repo, RepoRecord("main", "origin", "0" * 40, sha,
                                                   str(root / "wt" / repo)))


def land(rt: Runtime) -> None:
    """The change's landing as the lander records it: each repo's step, then its end."""
    rt.changes.begin_landing(PLAN, "{}", {})
    for repo, sha in SHA.items():
        lease = rt.changes.take_lease(repo, 1)
        assert lease is not None
        assert rt.changes.step(PLAN, lease, repo, StepRecord.of({"state": "landing"}))
        assert rt.changes.step(PLAN, lease, repo, StepRecord.of({"state": "landed",
                                                                 "landed": sha}))
    rt.changes.end_landing(PLAN, "landed", None)


def client(rt: Runtime, eco: Path) -> TestClient:
    return TestClient(create_app(rt, eco), base_url="http://localhost")


def test_a_landed_change_whose_sweep_failed_reads_landed(rt: Runtime, tmp_path: Path) -> None:
    eco = change_catalog(tmp_path / "eco")
    _svc, sid, st = run_sweep(rt, eco)
    assert st["status"] == "failed", st  # (no git checkouts: the edits fail)
    candidates(rt, tmp_path)
    rt.changes.record_verify(PLAN, "TODO-003", "web", dict(SHA))
    land(rt)
    c = client(rt, eco)

    rows = c.get("/api/changes").json()
    assert [(r["plan"], r["state"], r["repos"]) for r in rows] == [
        (PLAN, "landed", {"api": "landed", "web": "landed"})]  # PLAN-002 is no change
    doc = c.get(f"/api/changes/{PLAN}").json()
    assert CONTRACT <= set(doc), CONTRACT - set(doc)
    assert doc["state"] == "landed" and doc["sweep"] == sid and doc["title"] == "test plan"
    assert {r: v["landed"] for r, v in doc["repos"].items()} == SHA
    assert {r: v["state"] for r, v in doc["repos"].items()} == {"api": "landed", "web": "landed"}
    # Landed: no blockers on the list nor the sweep's change line (0.5 counted the
    # landing rule's "already landed" verdicts as blockers); its page's document is
    # `change status --json`'s, which still says why it cannot land (again).
    assert [r["blockers"] for r in rows] == [0]
    assert doc["landable"] is False and ("state", PLAN) in [(b["kind"], b["id"])
                                                           for b in doc["blockers"]]

    # Where the plan showed "active 0/4": the overview, the plan's page, the sweep's page.
    over = c.get("/api/overview").json()
    plans = {p["id"]: p for p in over["plans"]}
    assert plans[PLAN]["status"] == "active" and plans[PLAN]["progress"]["completed"] == 0
    assert over["changes"][PLAN]["state"] == "landed"
    assert set(over["changes"]) == {PLAN}
    graph = c.get(f"/api/plans/{PLAN}/graph").json()
    assert graph["change"]["state"] == "landed"
    assert graph["change"]["repos"] == {"api": "landed", "web": "landed"}
    assert c.get("/api/plans/PLAN-002/graph").json()["change"] is None
    sweep = c.get(f"/api/sweeps/{sid}/graph").json()
    assert sweep["sweep"]["status"] == "failed" and sweep["change"]["state"] == "landed"
    assert sweep["change"]["blockers"] == 0


def test_the_list_renders_any_document_of_the_contract() -> None:
    """The other engineer's document (failed_verification, empty blockers, verify and
    gates) summarised as the page shows it."""
    d = {"plan": PLAN, "branch": "chg", "land": "push", "state": "failed_verification",
         "reason": "TODO-041 failed: exit 3 (make test)", "order": ["web", "api"], "train": None,
         "repos": {"api": {"state": "drafted"}, "web": {"state": "verified"}},
         "landable": False, "blockers": [], "verify": {}, "gates": {}, "sweep": None}
    s = summary(d, "bump")
    assert s["state"] == "failed_verification" and (s["reason"] or "").startswith("TODO-041")
    assert list(s["repos"].items()) == [("web", "verified"), ("api", "drafted")]  # landing order
    assert (s["blockers"], s["landable"], s["error"]) == (0, False, None)


def test_unknown_or_plain_plans_are_refused_with_a_reason(rt: Runtime, tmp_path: Path) -> None:
    eco = change_catalog(tmp_path / "eco")
    c = client(rt, eco)
    missing = c.get("/api/changes/PLAN-999")
    assert missing.status_code == 404 and "PLAN-999" in missing.json()["error"]
    plain = c.get("/api/changes/PLAN-002")
    assert plain.status_code == 400 and "PLAN-002 is not a change" in plain.json()["error"]
    assert "change:" in plain.json()["hint"]
    for page in ("/changes", f"/changes/{PLAN}"):
        r = c.get(page)
        assert r.status_code == 200 and "app.js" in r.text


WAVES = {"waves": [{"name": "canary", "repos": ["api"]}, {"name": "middle", "repos": ["web"]},
                   {"name": "rest", "repos": ["jobs"]}]}


def test_a_rolled_back_sweep_still_lists_its_waves(rt: Runtime, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An atomic sweep whose middle wave fails rolls back: the rollback's run has no waves,
    yet its page lists the three (canary done, middle halted, rest never started), and
    `sweep status` (--json and for people) lists the same, from the same events."""
    from workers.embedded import embedded_workers
    from coordination.sweeps import SweepService
    from tests.unit.support.sweeps import repos_of

    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "undo": "true"},
        {"id": "TODO-002", "repo": "web", "run": "exit 3", "undo": "true"},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "undo": "true"},
    ])
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["plans"][0].update(WAVES)
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    svc = SweepService(rt, eco)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=True)
        st = svc.wait(sid, timeout=45)
    assert st["status"] == "rolled_back", st
    graph = client(rt, eco).get(f"/api/sweeps/{sid}/graph").json()
    waves = graph["sweep"]["waves"]
    assert [(w["name"], w["state"]) for w in waves] == [
        ("canary", "done"), ("middle", "halted"), ("rest", "pending")], waves
    assert "wave middle missed its criteria" in waves[1]["reason"]
    assert waves[0]["count"] == 1 and waves[0]["from_events"] is True
    # The CLI's document is the page's (0.4.0: `sweep status` of a rolled-back sweep had
    # no waves while its page had them).
    assert svc.status(sid).get("waves") == waves
    assert client(rt, eco).get(f"/api/sweeps/{sid}").json()["waves"] == waves
    from coordination.cli.sweep_render import render_status

    capsys.readouterr()
    render_status(svc.status(sid), lines=0)
    text = capsys.readouterr().out
    assert "wave canary: done - 1 of 1 succeeded" in text, text
    assert "wave middle: halted - " in text and "missed its criteria" in text, text
    assert "wave rest: pending - never started" in text, text


@pytest.mark.parametrize("last, status, states", [
    ("true", "succeeded", ["done", "done", "done"]),
    ("exit 3", "failed", ["done", "done", "halted"]),
], ids=["succeeded", "last-wave-halted"])
def test_a_finished_waved_sweep_lists_its_waves(rt: Runtime, tmp_path: Path, last: str,
                                                status: str, states: list[str]) -> None:
    """A sweep that went through its waves and ended (every wave done; or its last wave
    missed its criteria: `failed`, that wave halted) lists them on its page's documents
    as `sweep status --json` does: each with its state and count."""
    from workers.embedded import embedded_workers
    from coordination.sweeps import SweepService
    from tests.unit.support.sweeps import repos_of

    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
        {"id": "TODO-003", "repo": "jobs", "run": last},
    ])
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["plans"][0].update(WAVES)
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    svc = SweepService(rt, eco)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        st = svc.wait(sid, timeout=45)
    assert st["status"] == status, st
    c = client(rt, eco)
    graph = c.get(f"/api/sweeps/{sid}/graph").json()["sweep"]
    status_doc = c.get(f"/api/sweeps/{sid}").json()
    for waves in (graph["waves"], status_doc["waves"]):
        assert [(w["name"], w["state"]) for w in waves] == list(zip(
            ["canary", "middle", "rest"], states)), waves
        assert [(w["todos"], w["ended"]) for w in waves] == [
            (["TODO-001"], 1), (["TODO-002"], 1), (["TODO-003"], 1)], waves
        assert [w["succeeded"] for w in waves] == [1, 1, 1 if status == "succeeded" else 0]
    assert graph["waves"] == status_doc["waves"]
    if status == "failed":
        assert "wave rest missed its criteria" in str(graph["waves"][2]["reason"])


def test_the_web_view_names_a_pointer_put_back_as_a_replay(rt: Runtime, tmp_path: Path
                                                          ) -> None:
    """Two sweeps of the change plan; a Redis writer puts the first one's pointer back:
    /api/changes/PLAN judges it with the same rule as `change land`, reading the
    freshness anchor beside the catalog (no git run for it), and names the replay."""
    eco = change_catalog(tmp_path / "eco")
    _svc, first, _st = run_sweep(rt, eco)
    older = rt.redis.hget(rt.keys.change(PLAN), "sweep")
    _svc, second, _st = run_sweep(rt, eco)
    c = client(rt, eco)
    doc = c.get(f"/api/changes/{PLAN}").json()
    assert doc["sweep"] == second
    assert not any(b["why"].startswith("replayed") for b in doc["blockers"]), doc["blockers"]
    rt.redis.hset(rt.keys.change(PLAN), "sweep", older)
    doc = c.get(f"/api/changes/{PLAN}").json()
    assert doc["sweep"] == first and not doc["landable"]
    [why] = [b["why"] for b in doc["blockers"] if b["id"] == PLAN and b["kind"] == "evidence"]
    assert why.startswith(f"replayed: Redis holds sweep {first} (run 0) but the newest "
                          f"sweep of {PLAN} is {second} (run 0) (anchor: "), why
    assert ".coord.anchors" in why
