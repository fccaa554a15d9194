"""Merge queues beyond the first landing, on GitHub's (a ruleset's ``merge_queue`` rule)
and GitLab's (merge trains) fakes, every request and response checked against the
forge's description:

- ``coord change revert`` of a change whose bases now require a queue: each revert pull
  request goes through it (the base refuses a direct merge), consumers first, each
  waited for; ``--dry-run`` and ``status`` say so; a revert the queue drops stops the
  revert naming it.
- ``coord change land`` run again, after a landing was cut off, while a pull request
  sits in the queue and the forge calls it not mergeable meanwhile: the re-run waits
  for the queue (never enqueuing twice, never recording it not landed) and lands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.forges import TOKEN_ENV, FakeForge
from tests.integration.change_repos import git
from tests.integration.forge_change import (
    NAMES,
    PLAN,
    ForgeChange,
    ended,
    in_background,
    queue_requests,
    require_queues,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(480)
KINDS = ["github", "gitlab"]


@pytest.fixture
def fq(fake_forge: FakeForge, tmp_path: Path, redis_url: str,
       monkeypatch: pytest.MonkeyPatch) -> ForgeChange:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    # a landing or revert asks a merge queue after 0.1 s (COORD_MERGE_QUEUE_POLL): the
    # tests wait on what it read, not on its clock
    monkeypatch.setenv("COORD_MERGE_QUEUE_POLL", "0.1")
    get_settings.cache_clear()
    return ForgeChange(fake_forge, tmp_path / "w")


def _name(fc: ForgeChange) -> str:
    return "merge train" if fc.fake.kind == "gitlab" else "merge queue"


def _forge_says(fc: ForgeChange, repo: str, number: int) -> Any:
    """The pull request's mergeability as coord's client reads it from the fake now."""
    import os

    from coordination.change.pulls.forges import ChangeForges

    old = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = fc.fake.token
    try:
        return ChangeForges(fc.cp).of(repo).mergeability(number)
    finally:
        if old is None:
            del os.environ[TOKEN_ENV]
        else:
            os.environ[TOKEN_ENV] = old


def _landed_then_queued(fc: ForgeChange) -> tuple[dict[str, str | None], str]:
    """The change landed (merged directly), then both bases made to require a queue;
    the bases before the landing, and the queue's kind."""
    base = {r: fc.head(r) for r in NAMES}
    fc.draft()
    fc.verify()
    assert fc.coord("change", "publish", PLAN).returncode == 0
    assert fc.coord_json("change", "land", PLAN)["state"] == "landed"
    return base, require_queues(fc)


def _opened_reverts(fc: ForgeChange) -> dict[str, int]:
    """`coord change revert`: the revert pull requests opened (no worker verifies
    them: none merges), then the revert candidates verified; repo -> its revert pull
    request."""
    rv = fc.coord_json("change", "revert", PLAN)
    assert rv["state"] == "reverting" and "revert candidates" in rv["reason"], rv
    fc.verify()  # the verify todo run on the revert candidates (their worktrees)
    return {r: next(p.number for p in fc.fake.projects[f"acme/{r}"].prs.values()
                    if p.head == "coord-revert/chg") for r in NAMES}


@pytest.mark.parametrize("fake_forge", KINDS, indirect=True)
def test_a_revert_under_a_required_queue_merges_through_it(fq: ForgeChange) -> None:
    """--dry-run and status say each revert goes through the queue; the revert adds
    api's revert pull request to its queue pinned to its revert commit, waits for the
    queue to merge it, then libz's (never before); nothing is merged directly; the
    change ends reverted, each base's tree as before the landing."""
    fake, name = fq.fake, _name(fq)
    base, kind = _landed_then_queued(fq)
    dry = fq.coord_json("change", "revert", PLAN, "--dry-run")
    assert [(r["repo"], r["action"], r["merge_queue"]) for r in dry["repos"]] == [
        ("api", "revert", kind), ("libz", "revert", kind)], dry
    assert all(f"add it to the {name}" in r["why"] for r in dry["repos"]), dry
    said = fq.coord("change", "revert", PLAN, "--dry-run")
    assert said.stdout.count(f"its revert pull request through the {name}") == 2, said.stdout
    reverts = _opened_reverts(fq)
    st = fq.coord_json("change", "status", PLAN)
    assert st["repos"]["api"]["revert_pr"]["merge_queue"] == {"kind": kind}, st["repos"]["api"]
    shown = fq.coord("change", "status", PLAN).stdout
    for r in NAMES:
        assert any(ln.startswith(f"revert pull request {r}: #{reverts[r]} ")
                   and ln.endswith(f": through the {name}") for ln in shown.splitlines()), shown
    merges, sent = len(fq.merges()), len(queue_requests(fq))
    proc, ok = in_background(fq, "change", "revert", PLAN), False
    try:
        wait_for(lambda: fake.queued("acme/api") == [reverts["api"]], timeout=90,
                 what="api's revert enqueued")
        wait_for(lambda: fake.queue_reads("acme/api", reverts["api"]) >= 1, timeout=60,
                 what="the revert to read api's queue entry")
        assert fake.queued("acme/libz") == []  # its consumer's revert is not merged yet
        fake.release("acme/api", reverts["api"])
        wait_for(lambda: fake.queued("acme/libz") == [reverts["libz"]], timeout=60,
                 what="libz's revert enqueued")
        fake.release("acme/libz", reverts["libz"])
        ok = True
    finally:
        rc, out, err = ended(proc, not ok)
    assert rc == 0, (out, err)
    assert json.loads(out)["state"] == "reverted", out
    heads = {r: fake.projects[f"acme/{r}"].head_of(fake.projects[f"acme/{r}"].prs[n])
             for r, n in reverts.items()}
    new = queue_requests(fq)[sent:]
    assert [b["sha"] for b in new] == [heads["api"], heads["libz"]], new  # nothing else
    if fake.kind == "gitlab":  # the merge train: auto-merge, never a direct merge
        assert all(b["auto_merge"] is True for b in new), new
    else:
        assert len(fq.merges()) == merges  # through the queue only: no direct merge asked
    for r in NAMES:
        head = fq.head(r)
        assert (git(fq.bare(r), "rev-parse", f"{head}^{{tree}}")
                == git(fq.bare(r), "rev-parse", f"{base[r]}^{{tree}}"))
    assert fq.coord_json("change", "status", PLAN)["state"] == "reverted"


@pytest.mark.parametrize("fake_forge", KINDS, indirect=True)
def test_a_revert_the_queue_drops_stops_naming_it(fq: ForgeChange) -> None:
    """The queue removes api's revert unmerged (GitHub: a check failed in the queue;
    GitLab: the train's pipeline failed): the revert stops there, reverting, naming
    api's revert pull request, the entry's last state (GitLab: its reason); libz's
    revert is never enqueued; nothing is taken back out."""
    fake, name = fq.fake, _name(fq)
    _landed_then_queued(fq)
    landed = {r: fq.head(r) for r in NAMES}
    reverts = _opened_reverts(fq)
    reason = "The pipeline for this merge train failed."
    proc, ok = in_background(fq, "change", "revert", PLAN), False
    try:
        wait_for(lambda: fake.queued("acme/api") == [reverts["api"]], timeout=90,
                 what="api's revert enqueued")
        wait_for(lambda: fake.queue_reads("acme/api", reverts["api"]) >= 1, timeout=60,
                 what="the revert to read api's queue entry")
        if fake.kind == "github":
            reads = fake.set_queue_state(  # type: ignore[attr-defined]
                "acme/api", reverts["api"], "UNMERGEABLE")
            wait_for(lambda: fake.queue_reads("acme/api", reverts["api"]) > reads,
                     timeout=60, what="the revert to read api's entry unmergeable")
        fake.dequeue("acme/api", reverts["api"], reason if fake.kind == "gitlab" else None)
        ok = True
    finally:
        rc, out, err = ended(proc, not ok)
    assert rc == 0, (out, err)  # (reverting: run it again to carry on)
    doc = json.loads(out)
    assert doc["state"] == "reverting", doc
    assert f"api: revert pull request #{reverts['api']}" in doc["reason"], doc["reason"]
    assert f"left the {name} unmerged" in doc["reason"], doc["reason"]
    assert ("unmergeable" if fake.kind == "github" else reason.lower()) in doc[
        "reason"].lower(), doc["reason"]
    assert fake.queued("acme/libz") == []
    for r in NAMES:
        assert fake.projects[f"acme/{r}"].prs[reverts[r]].state == "open"
        assert fq.head(r) == landed[r]
    st = fq.coord_json("change", "status", PLAN)
    assert st["state"] == "landed" and st["repos"]["api"]["state"] == "reverting", st


@pytest.mark.parametrize("fake_forge", KINDS, indirect=True)
def test_a_landing_run_again_while_queued_waits_for_the_queue(fq: ForgeChange) -> None:
    """The landing is cut off while libz sits in its queue, which the forge reports as
    not mergeable meanwhile (GitHub: mergeable_state blocked; GitLab:
    ci_still_running): `land` run again reads the queue entry first, waits for the
    queue to merge libz (not enqueued twice, not recorded not landed), then lands api."""
    fake = fq.fake
    require_queues(fq)
    cands = fq.draft()
    fq.verify()
    assert fq.coord("change", "publish", PLAN).returncode == 0
    libz, api = fq.pr("libz").number, fq.pr("api").number
    fake.projects["acme/libz"].queued_word = (
        "ci_still_running" if fake.kind == "gitlab" else "blocked")
    first = in_background(fq, "change", "land", PLAN)
    try:
        wait_for(lambda: fake.queued("acme/libz") == [libz], timeout=90, what="libz enqueued")
        wait_for(lambda: fake.queue_reads("acme/libz", libz) >= 1, timeout=60,
                 what="the landing to read libz's queue entry")
    finally:
        first.kill()  # cut off: no word of it ends the landing
        first.communicate(timeout=60)
    assert _forge_says(fq, "libz", libz).mergeable is False  # as the forge says it now
    proc, ok = in_background(fq, "change", "land", PLAN), False
    try:
        # its entry read twice (GitLab: its merge request read four times, the first
        # read and the mergeability's too): read first, then waited on
        reads = fake.queue_reads("acme/libz", libz) + (4 if fake.kind == "gitlab" else 2)
        wait_for(lambda: fake.queue_reads("acme/libz", libz) >= reads, timeout=90,
                 what="the landing run again to wait on libz's queue entry")
        assert fake.queued("acme/libz") == [libz] and fake.queued("acme/api") == []
        fake.release("acme/libz", libz)
        wait_for(lambda: fake.queued("acme/api") == [api] or proc.poll() is not None,
                 timeout=60, what="api enqueued")
        assert proc.poll() is None, proc.communicate()
        fake.release("acme/api", api)
        ok = True
    finally:
        rc, out, err = ended(proc, not ok)
    assert rc == 0, (out, err)
    assert json.loads(out)["state"] == "landed", out
    assert [b["sha"] for b in queue_requests(fq)] == [cands["libz"], cands["api"]]
    for r in NAMES:
        assert fq.pr(r).state == "merged"
