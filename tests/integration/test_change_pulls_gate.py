"""A gate that counts the pull request's approvals (``gate: {forge_reviews: true}``): an
approving review on the verified head is a vote of its reviewer on the waiting gate,
counted as any vote; one on another head, or by someone not in ``from:``, is not (#60)."""

from __future__ import annotations

import pytest

from tests.integration.change_repos import Repos
from tests.integration.forge_world import GitStubForges, with_forges
from tests.integration.helpers import PLAN, Cluster
from tests.integration.landing import NAMES, start, status, write_catalog

pytestmark = pytest.mark.timeout(180)


def test_a_forge_reviews_gate_counts_approvals_on_the_verified_head(
        landing_world: tuple[Cluster, Repos]) -> None:
    from coordination.catalog.file.store import CatalogStore
    from coordination.change.pulls.forge_status import read_views
    from coordination.change.pulls.forges import ChangeForges
    from coordination.change.model import change_of
    from coordination.change.pulls.publish import Publisher
    from coordination.sweeps.governance.forge_reviews import count_reviews

    c, repos = landing_world
    write_catalog(c, gate=True, broken=False)
    text = with_forges(c.eco.read_text()).replace(
        "change: {branch: chg}", "change: {branch: chg, land: pr}").replace(
        "gate: {approvals: 1}", "gate: {approvals: 1, forge_reviews: true, from: [alice, bob]}")
    c.eco.write_text(text)
    start(c)
    sid = c.start_sweep(PLAN)
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=90)
    cp = change_of(CatalogStore(c.eco).load(), PLAN, c.eco.parent)
    forges = GitStubForges(c.root)
    forges.targets = cp.targets
    assert Publisher(c.rt, cp, ChangeForges(cp, forges)).publish().ok

    def counted() -> list[dict]:  # type: ignore[type-arg]
        c.rt.changes.forget_forge_views(PLAN)
        st = c.rt.changes.read(PLAN)
        views = read_views(c.rt, cp, st, ChangeForges(cp, forges))
        return [dict(x) for x in count_reviews(c.rt, c.eco, cp, views)]

    api = forges.of("api")  # the gate's repo
    api.get_pr(1)
    api.review(1, "mallory")  # not one of from:
    forges.of("core").get_pr(1)
    forges.of("core").review(1, "alice")  # another repo's pull request: not the gate's
    got = counted()
    assert [(x["who"], x["status"]) for x in got] == [("mallory", None)]
    assert "not" in str(got[0]["error"]) and "alice, bob" in str(got[0]["error"])
    assert c.checkpoint(sid, "TODO-050")["status"] == "awaiting_approval"
    api.review(1, "bob")
    got = counted()
    assert [(x["who"], x["status"]) for x in got if x["error"] is None] == [("bob", "succeeded")]
    c.wait_sweep(sid, timeout=90)
    doc = status(c)
    assert doc["gates"]["TODO-050"]["verdict"] == "approved", doc["gates"]
    assert doc["gates"]["TODO-050"]["approvals"] == ["bob"]
