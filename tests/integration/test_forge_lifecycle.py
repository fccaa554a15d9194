"""A two-repo change through pull requests on each kind of forge (GitHub, GitLab, Gitea),
end to end as a user runs it (#60): publish (once, however often run), status from the
forge, reviews in by signed webhooks (a bad signature refused), land --dry-run naming
each missing review, a rate limit during the land waited out, the merges in dependency
order pinned to the verified heads; a moved head refused; a refused merge ->
partially_landed -> revert pull requests; the token in no output. The fakes validate
every request and response against the forge's description (the ``fake_forge``
fixture)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.forges import FakeForge
from tests.integration.change_repos import git
from tests import clifork
from tests.integration.forge_change import (NAMES, PLAN, SECRET, ForgeChange, ended,
                                           in_background)
from tests.servers import term_then_kill
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(480)


@pytest.fixture
def fc(fake_forge: FakeForge, tmp_path: Path, redis_url: str,
       monkeypatch: pytest.MonkeyPatch) -> ForgeChange:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    # a landing asks a merge queue after 0.1 s, not 1 s (doubling to 1.5 s, not 15 s):
    # the queue tests wait on what the landing read, not on its clock
    monkeypatch.setenv("COORD_MERGE_QUEUE_POLL", "0.1")
    get_settings.cache_clear()
    return ForgeChange(fake_forge, tmp_path / "w")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _webhook(fc: ForgeChange) -> tuple[subprocess.Popen[str], str]:
    """`coord forge webhook` on a free port; its /hooks/<kind> URL."""
    import os

    port = _free_port()
    proc = clifork.popen([sys.executable, "-m", "coordination.cli.main", "--file",
                          str(fc.catalog), "forge", "webhook", "--port", str(port)],
                         env={**os.environ, **fc.env, "COORD_FORGE_WEBHOOK_SECRET": SECRET},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(up, timeout=30, what="coord forge webhook to listen")
    return proc, f"http://127.0.0.1:{port}/hooks/{fc.fake.kind}"


def _outputs_hold_no_token(fc: ForgeChange, *outs: str) -> None:
    for out in outs:
        assert fc.fake.token not in out


def test_a_change_lands_through_its_pull_requests(fc: ForgeChange) -> None:
    fake = fc.fake
    base = {r: fc.head(r) for r in NAMES}
    cands = fc.draft()
    fc.verify()
    for r in NAMES:
        fake.protect(f"acme/{r}", approvals=1)
    said: list[str] = []
    first = fc.coord("change", "publish", PLAN, "--json")
    said += [first.stdout, first.stderr]
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert [(r["repo"], r["action"]) for r in doc["repos"]] == [("libz", "opened"),
                                                               ("api", "opened")]
    again = fc.coord_json("change", "publish", PLAN)
    assert [r["action"] for r in again["repos"]] == ["up_to_date", "up_to_date"]
    for r in NAMES:
        p = fake.projects[f"acme/{r}"]
        assert [x.head for x in p.prs.values()] == ["chg"]  # one pull request, ever
        assert fc.head(r) == base[r]  # the protected base: never pushed
        assert fc.head(r, "chg") == cands[r]
        pr = fc.pr(r)
        assert "coord:PLAN-001" in pr.labels
        assert p.statuses[cands[r]]["coord/verify"].state in ("success",)
    assert f"Depends-On: {doc['repos'][0]['url']}" in fc.pr("api").body
    assert "Depends-On" not in fc.pr("libz").body
    # A person's words around coord's section stay when coord rewrites it (here: a
    # section someone edited by hand is set right, their note and link kept).
    ours = fc.pr("api").body
    fc.pr("api").body = ("Reviewers: the API first, please.\n\n"
                         + ours.replace("**Verification**", "**Checked**") + "\nCloses #12.")
    fixed = fc.coord_json("change", "publish", PLAN)
    assert [r["action"] for r in fixed["repos"]] == ["up_to_date", "updated"], fixed
    assert fc.pr("api").body == ("Reviewers: the API first, please.\n\n" + ours
                                 + "\nCloses #12."), fc.pr("api").body

    dry = fc.coord_json("change", "land", PLAN, "--dry-run", expect=1)
    assert [(b["kind"], b["id"]) for b in dry["blockers"]] == [("forge", "libz"),
                                                             ("forge", "api")]
    assert all("review" in b["why"] for b in dry["blockers"]), dry["blockers"]

    proc, url = _webhook(fc)
    try:
        fake.add_webhook(url, SECRET)
        fake.add_webhook(url, "not-the-secret")  # a forger's: refused, changes nothing
        for r in NAMES:
            fake.review(f"acme/{r}", fc.pr(r).number, "alice")
        fake.settle()
        got = sorted({d.status for d in fake.deliveries if d.url == url})
        assert 401 in got and 200 in got, [(d.event, d.status) for d in fake.deliveries]
        seen = len(fake.seen)
        st = fc.coord_json("change", "status", PLAN)  # from the webhook: no polling
        assert len(fake.seen) == seen
        for r in NAMES:
            pr = st["repos"][r]["pr"]
            assert pr["source"] == "webhook" and pr["state"] == "open"
            assert pr["url"] and pr["number"] == fc.pr(r).number
            assert "alice" in pr["reviews"]["approved_by"]
        assert st["landable"] is True, st["blockers"]
        said += [json.dumps(st)]
    finally:
        term_then_kill(proc.pid, group=False, grace=5, poll=0.05)
        said.append(proc.stderr.read() if proc.stderr else "")

    # a rate limit on the first merge: waited out (the forge's own way of saying it)
    merge = r"/pulls/\d+/merge$|/merge_requests/\d+/merge$"
    if fake.kind == "github":
        fake.fail("PUT", merge, 403, body={"message": "API rate limit exceeded"},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000",
                           "X-RateLimit-Reset": str(int(time.time()) + 2)})
    else:
        fake.fail("PUT" if fake.kind == "gitlab" else "POST", merge, 429,
                  body={"message": "Retry later"}, headers={"Retry-After": "1"})
    landed = fc.coord("change", "land", PLAN, "--json")
    said += [landed.stdout, landed.stderr]
    assert landed.returncode == 0, (landed.stdout, landed.stderr)
    assert json.loads(landed.stdout)["state"] == "landed"
    assert fc.merges() == ["libz", "libz", "api"]  # the rate-limited try, then in order
    for r in NAMES:
        assert fc.pr(r).state == "merged"
        head = fc.head(r)
        assert git(fc.bare(r), "merge-base", "--is-ancestor", cands[r], str(head)) == ""
    final = fc.coord_json("change", "status", PLAN)
    assert final["state"] == "landed"
    _outputs_hold_no_token(fc, *said, json.dumps(final), str(fc.rt.changes.dump(PLAN)),
                           str(fc.rt.changes.forge_views(PLAN)))


def test_a_moved_head_and_a_refused_merge_then_revert_pull_requests(fc: ForgeChange) -> None:
    fake = fc.fake
    base = {r: fc.head(r) for r in NAMES}
    cands = fc.draft()
    fc.verify()
    assert fc.coord("change", "publish", PLAN).returncode == 0
    # someone pushes to api's pull request branch: not what coord verified
    fc.push_by_hand("api")
    res = fc.coord("change", "land", PLAN)
    assert res.returncode == 1, res.stdout
    assert "someone pushed to its branch" in res.stderr
    assert fc.merges() == [] and fc.head("libz") == base["libz"]
    pub = fc.coord("change", "publish", PLAN)  # not overwritten
    assert pub.returncode == 1 and "coord does not overwrite it" in pub.stderr, pub.stderr
    git(fc.root / "other-api", "push", "-q", "--force", "origin",
        f"{cands['api']}:refs/heads/chg")  # undone
    fake.settle()

    fake.projects["acme/api"].refusals[fc.pr("api").number] = "merging is frozen this week"
    out = fc.coord_json("change", "land", PLAN, expect=1)
    assert out["state"] == "partially_landed", out
    assert f"api: pull request #{fc.pr('api').number}" in out["reason"]
    assert "merging is frozen this week" in out["reason"]
    assert out["landed"] == ["libz"]
    assert fc.pr("libz").state == "merged" and fc.pr("api").state == "open"
    assert fc.coord_json("change", "status", PLAN)["state"] == "partially_landed"

    # a revert is reviewed like any change, and verified like one: the protection the
    # tutorial sets up requires coord/verify (GitLab's protection requires a pipeline,
    # not a named status: there coord/verify is only posted)
    fake.protect("acme/libz", approvals=1,
                 checks=[] if fake.kind == "gitlab" else ["coord/verify"])
    rv = fc.coord_json("change", "revert", PLAN)
    assert rv["state"] == "reverting", rv
    [revert] = [x for x in fake.projects["acme/libz"].prs.values() if x.head == "coord-revert/chg"]
    assert revert.base == "main" and "coord:PLAN-001" in revert.labels
    assert [x for x in fake.projects["acme/api"].prs.values() if x.head != "chg"] == []
    # no worker runs the verify todo here: said, coord/verify pending, nothing merged
    assert "no live worker" in rv["reason"] and "revert candidates" in rv["reason"], rv
    revert_head = fake.projects["acme/libz"].head_of(revert)
    assert fake.projects["acme/libz"].statuses[revert_head]["coord/verify"].state == "pending"
    fake.review("acme/libz", revert.number, "bob")
    fc.verify()  # the verify todo run on the revert candidates (their worktrees)
    assert fc.head("libz") != revert_head
    done = fc.coord_json("change", "revert", PLAN)
    assert done["state"] == "reverted", done
    assert fake.projects["acme/libz"].statuses[revert_head]["coord/verify"].state == "success"
    head = fc.head("libz")
    assert (git(fc.bare("libz"), "rev-parse", f"{head}^{{tree}}")
            == git(fc.bare("libz"), "rev-parse", f"{base['libz']}^{{tree}}"))
    assert fc.coord_json("change", "status", PLAN)["state"] == "reverted"


def test_abandon_closes_the_pull_requests_and_deletes_only_coords_branches(
        fc: ForgeChange) -> None:
    """`coord change abandon`: each open pull request closed with a comment naming the
    reason, the change branch deleted where its head is still coord's (api's, pushed to
    by someone else, kept), the base never touched; the change ends abandoned, nothing
    lands it, prune removes its worktrees. Bad input changes nothing."""
    fake = fc.fake
    base = {r: fc.head(r) for r in NAMES}
    cands = fc.draft()
    fc.verify()
    assert fc.coord("change", "publish", PLAN).returncode == 0
    late = fc.push_by_hand("api")

    bad = fc.coord("change", "abandon", PLAN, "--reason", "  ")
    assert bad.returncode == 2 and "--reason" in bad.stderr, bad.stderr
    dry = fc.coord_json("change", "abandon", PLAN, "--dry-run")
    assert [(r["repo"], r["pr"]["action"], r["branch"]) for r in dry["repos"]] == [
        ("libz", "would_close", "would_delete"), ("api", "would_close", "not_coords")]
    for r in NAMES:  # neither changed anything
        assert fc.pr(r).state == "open" and fake.projects[f"acme/{r}"].comments.get(
            fc.pr(r).number) is None
    assert fc.head("libz", "chg") == cands["libz"]

    out = fc.coord_json("change", "abandon", PLAN, "--reason", "superseded by PLAN-009")
    assert out["state"] == "abandoned", out
    assert [(r["repo"], r["pr"]["action"], r["branch"]) for r in out["repos"]] == [
        ("libz", "closed", "deleted"), ("api", "closed", "not_coords")]
    for r in NAMES:
        pr = fc.pr(r)
        assert pr.state == "closed"
        [said] = fake.projects[f"acme/{r}"].comments[pr.number]
        assert "superseded by PLAN-009" in said
        assert fc.head(r) == base[r]  # the base: never touched
    assert fc.head("libz", "chg") is None
    assert fc.head("api", "chg") == late  # someone else's commit: kept
    st = fc.coord_json("change", "status", PLAN)
    assert st["state"] == "abandoned"
    again = fc.coord_json("change", "abandon", PLAN)  # nothing left to do
    assert [(r["pr"]["action"], r["branch"]) for r in again["repos"]] == [
        ("already_closed", "absent"), ("already_closed", "not_coords")]
    land = fc.coord("change", "land", PLAN)
    assert land.returncode == 1 and "abandoned" in land.stderr, land.stderr
    assert fc.merges() == []
    wts = {r: fc.rt.changes.read(PLAN).repos[r].worktree for r in NAMES}
    pruned = fc.coord_json("change", "prune", PLAN)
    assert all(Path(w).exists() is False for w in wts.values()), pruned


def test_a_repo_whose_settings_refuse_the_merge_method_merges_nothing(fc: ForgeChange) -> None:
    """What one repo's settings would refuse is known before anything merges: api's
    (GitHub: a ruleset requiring linear history, no merge commits; GitLab: a project
    merging with merge commits, the plan's rebase refused; Gitea: merge commits not
    allowed) stops the landing before libz merges, said by --dry-run and land alike."""
    fake = fc.fake
    if fake.kind == "github":
        fake.add_ruleset("acme/api", linear=True)
        said = "linear history"
    elif fake.kind == "gitea":
        fake.projects["acme/api"].allowed_methods = ["squash", "rebase"]
        said = "does not allow merge merges"
    else:
        fc.catalog.write_text(fc.catalog.read_text().replace(
            "land: pr}", "land: pr, merge_method: rebase}"))
        fake.projects["acme/libz"].merge_method = "ff"  # takes a rebase; api does not
        said = "merges with 'merge'"
    fc.draft()
    fc.verify()
    assert fc.coord("change", "publish", PLAN).returncode == 0
    dry = fc.coord_json("change", "land", PLAN, "--dry-run", expect=1)
    refused = [b for b in dry["blockers"] if b["kind"] == "forge"]
    assert [b["id"] for b in refused] == ["api"], dry["blockers"]
    assert said in refused[0]["why"] and "nothing is merged" in refused[0]["why"], refused
    res = fc.coord("change", "land", PLAN, "--json")
    assert res.returncode == 1 and said in res.stdout + res.stderr, (res.stdout, res.stderr)
    assert fc.merges() == []
    assert fc.pr("libz").state == "open" and fc.pr("api").state == "open"
    assert fc.coord_json("change", "status", PLAN)["state"] != "partially_landed"


# -- merge queues: GitHub's (a ruleset's merge_queue rule), GitLab's merge trains ------------


def _queued_world(fc: ForgeChange) -> dict[str, str]:
    """Both repos' bases require a merge queue (GitHub) or run merge trains (GitLab);
    the change drafted, verified, published."""
    for r in NAMES:
        if fc.fake.kind == "gitlab":
            fc.fake.merge_trains(f"acme/{r}")  # type: ignore[attr-defined]
        else:
            fc.fake.add_ruleset(f"acme/{r}", queue="MERGE")
    cands = fc.draft()
    fc.verify()
    assert fc.coord("change", "publish", PLAN).returncode == 0
    return cands


def _queue_name(fc: ForgeChange) -> str:
    return "merge train" if fc.fake.kind == "gitlab" else "merge queue"


def _queued_requests(fc: ForgeChange) -> list[dict[str, Any]]:
    """What coord sent to add a pull request to its queue: GitHub's enqueuePullRequest
    variables, GitLab's merge bodies (each one: a direct merge would be one too)."""
    out = []
    for method, path, _q, _h, body in fc.fake.seen:
        if fc.fake.kind == "gitlab" and method == "PUT" and path.endswith("/merge"):
            out.append(json.loads(body))
        elif path.endswith("/graphql") and b"enqueuePullRequest" in body:
            out.append(json.loads(body)["variables"])
    return out


def _rule_reads(fc: ForgeChange) -> int:
    """The reads of what says a base takes no direct merge (GitHub: the branch's
    rulesets; GitLab: the project)."""
    if fc.fake.kind == "gitlab":
        return sum(1 for m, p, *_ in fc.fake.seen if m == "GET"
                   and p.rstrip("/").rsplit("/projects/", 1)[-1].count("/") == 0)
    return sum(1 for m, p, *_ in fc.fake.seen if m == "GET" and "/rules/branches/" in p)


@pytest.mark.parametrize("fake_forge", ["github", "gitlab"], indirect=True)
def test_a_merge_queue_merges_the_pull_requests_in_dependency_order(fc: ForgeChange) -> None:
    """Each base requires a merge queue (GitHub) or runs merge trains (GitLab): --dry-run
    and status say so, reading what says it once per repo; land adds libz to its queue
    pinned to its verified head, waits for the queue to merge it, then api (never
    before); no direct merge is asked."""
    fake, name = fc.fake, _queue_name(fc)
    kind = name.replace(" ", "_")
    cands = _queued_world(fc)
    libz, api = fc.pr("libz").number, fc.pr("api").number
    before = _rule_reads(fc)
    dry = fc.coord_json("change", "land", PLAN, "--dry-run")
    assert [e.get("merge_queue") for e in dry["manifest"]["repos"]] == [kind, kind], dry
    # per repo: once with its mergeability (which says whether it has a queue), once for
    # its merge settings; never a third time for the queue alone
    assert _rule_reads(fc) - before == 2 * len(NAMES)
    said = fc.coord("change", "land", PLAN, "--dry-run")
    assert said.stdout.count(f"through the {name}") == 2, said.stdout
    st = fc.coord_json("change", "status", PLAN)
    assert st["repos"]["api"]["pr"]["merge_queue"] == {"kind": kind, "state": None,
                                                       "position": None}
    proc, ok = in_background(fc, "change", "land", PLAN), False
    try:
        wait_for(lambda: fake.queued("acme/libz") == [libz], timeout=60, what="libz enqueued")
        wait_for(lambda: fake.queue_reads("acme/libz", libz) >= 1, timeout=60,
                 what="the landing to read libz's queue entry")
        assert fake.queued("acme/api") == []  # its provider is not merged yet
        fake.release("acme/libz", libz)
        wait_for(lambda: fake.queued("acme/api") == [api], timeout=60, what="api enqueued")
        fake.release("acme/api", api)
        ok = True
    finally:
        rc, out, err = ended(proc, not ok)
    assert rc == 0, (out, err)
    assert json.loads(out)["state"] == "landed"
    for r in NAMES:
        assert fc.pr(r).state == "merged"
        assert git(fc.bare(r), "merge-base", "--is-ancestor", cands[r], str(fc.head(r))) == ""
    sent = _queued_requests(fc)
    assert [b["sha"] for b in sent] == [cands["libz"], cands["api"]]  # and nothing else
    if fake.kind == "gitlab":  # the merge train: auto-merge, never a direct merge
        assert all(b["auto_merge"] is True for b in sent), sent
    else:
        assert fc.merges() == []  # through the queue only: no direct merge asked


@pytest.mark.parametrize("fake_forge", ["github", "gitlab"], indirect=True)
def test_a_merge_queue_that_removes_the_consumer_stops_the_landing(fc: ForgeChange) -> None:
    """The queue merges libz, then removes api unmerged (GitHub: a check failed in the
    queue; GitLab: the train's pipeline failed, auto-merge cancelled): the landing
    stops partially_landed naming api, the entry's last state (GitLab: its reason) and
    libz's merge (which stands); api is not merged, nothing is merged directly."""
    fake, name = fc.fake, _queue_name(fc)
    _queued_world(fc)
    libz, api = fc.pr("libz").number, fc.pr("api").number
    base_api = fc.head("api")
    reason = "The pipeline for this merge train failed."
    proc, ok = in_background(fc, "change", "land", PLAN), False
    try:
        wait_for(lambda: fake.queued("acme/libz") == [libz], timeout=60, what="libz enqueued")
        fake.release("acme/libz", libz)
        wait_for(lambda: fake.queue_reads("acme/api", api) >= 1, timeout=60,
                 what="the landing to read api's queue entry")
        if fake.kind == "github":
            reads = fake.set_queue_state("acme/api", api, "UNMERGEABLE")  # type: ignore[attr-defined]
            wait_for(lambda: fake.queue_reads("acme/api", api) > reads, timeout=60,
                     what="the landing to read api's entry unmergeable")
        fake.dequeue("acme/api", api, reason if fake.kind == "gitlab" else None)
        ok = True
    finally:
        rc, out, err = ended(proc, not ok)
    assert rc != 0, (out, err)
    doc = json.loads(out)
    assert doc["state"] == "partially_landed", doc
    assert "api: pull request" in doc["reason"] and f"left the {name} unmerged" in doc[
        "reason"], doc["reason"]
    assert ("unmergeable" if fake.kind == "github" else reason.lower()) in doc[
        "reason"].lower(), doc["reason"]
    assert "merged: libz" in doc["reason"], doc["reason"]
    assert fc.pr("libz").state == "merged" and fc.pr("api").state == "open"
    assert fc.head("api") == base_api
    assert len(_queued_requests(fc)) == 2  # libz's and api's: no direct merge of api
    if fake.kind == "github":
        assert fc.merges() == []
    st = fc.coord_json("change", "status", PLAN)
    assert st["state"] == "partially_landed"
