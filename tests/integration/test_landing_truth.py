"""The landing rule's holes found by the second audit of #38, each through the CLI on real
git (bare remotes), a real redis-server and a real `coord worker`:

- the failed verify todo deleted from the catalog (`coord todo delete`): 0.4 found the
  change landable and `change land` pushed the broken code;
- the train's drop of a change with two verify todos, forgotten at once: the older
  success of the verify todo the train never reached lifted it;
- `change status` (and the web view's document) saying landable after a landing, after a
  revert, and while the remote's base had moved, where `land --dry-run` refused.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest

from tests.integration.change_repos import Repos, json_str, make_repos
from tests.integration.helpers import Cluster
from tests.integration.landing import (
    NAMES,
    PLAN,
    kinds,
    refused,
    serve,
    start,
    status,
    sweep,
    untouched,
    write_catalog,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_deleting_the_failed_verify_todo_does_not_land_the_change(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    write_catalog(c)  # api's edit leaves BROKEN: its verify todo TODO-103 exits 3
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = sweep(c, expect=1)
    assert kinds(status(c)) == [("verify", "TODO-103")]

    res = c.cli("todo", "delete", "TODO-103")  # refused: it would look like a way past
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "TODO-103 is a verify todo of change PLAN-001 whose last run failed" in res.stderr
    assert "exit 3" in res.stderr and "--force" in res.stderr
    assert "TODO-103" in c.eco.read_text()

    res = c.cli("todo", "delete", "TODO-103", "--force")
    assert res.returncode == 0, res.stderr
    assert "TODO-103" not in c.eco.read_text()
    doc = status(c)
    assert doc["landable"] is False and doc["state"] == "drafted"
    assert kinds(doc) == [("verify", "TODO-103"), ("run", "TODO-103")]
    assert doc["verify"]["TODO-103"]["verdict"] == "failed"
    assert "BROKEN in api" in doc["verify"]["TODO-103"]["why"]
    assert f"failed in the plan's last sweep {sid}" in doc["blockers"][1]["why"]
    assert {n: (r["state"], r["verified_by"]) for n, r in doc["repos"].items()} == {
        n: ("drafted", []) for n in NAMES}
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(dry) == kinds(doc)
    assert refused(c, "change", "land", PLAN)["state"] == "not_ready"
    untouched(repos, base)


# -- the train's drop ---------------------------------------------------------------------

TRAIN_NAMES = ["libz", "core"]


def train_catalog(c: Cluster) -> None:
    """PLAN-001 writes one.txt in both repos (one verify todo, passing); PLAN-002 writes
    two.txt and has two verify todos: TODO-201 (libz) fails with exit 5 where one.txt is
    (PLAN-001's edit, merged in by the train), TODO-202 (core) always passes."""
    lines = ["version: 1", "repos:"]
    lines += [f"  - {{name: {n}, path: checkouts/{n}}}" for n in TRAIN_NAMES]
    lines += ["coordination:", "  plans:"]
    lines += [f"    - {{id: PLAN-00{k}, title: change {k}, status: active, "
              f"change: {{branch: change-{k}}}}}" for k in (1, 2)]
    lines.append("  todos:")
    for k, word in ((1, "one"), (2, "two")):
        for i, n in enumerate(TRAIN_NAMES):
            lines.append(f"    - {{id: TODO-{k}{i:02d}, task: {word} {n}, repo: {n}, "
                         f"plan: PLAN-00{k}, run: \"echo {word} > {word}.txt\", "
                         f"commit: \"{word} in {n}\"}}")
    edits1 = "TODO-100, TODO-101"
    edits2 = "TODO-200, TODO-201"
    lines.append(f"    - {{id: TODO-150, task: verify one, repo: core, plan: PLAN-001, "
                 f"verify: true, run: \"true\", blocked_by: [{edits1}]}}")
    check = 'test ! -f one.txt || { echo "one.txt is here" >&2; exit 5; }'
    lines.append(f"    - {{id: TODO-251, task: verify libz, repo: libz, plan: PLAN-002, "
                 f"verify: true, run: {json_str(check)}, blocked_by: [{edits2}]}}")
    lines.append(f"    - {{id: TODO-252, task: verify core, repo: core, plan: PLAN-002, "
                 f"verify: true, run: \"true\", blocked_by: [{edits2}]}}")
    lines.append("  dependencies:")
    lines.append("    - {id: DEP-001, consumer: core, provider: libz}")
    c.eco.write_text("\n".join(lines) + "\n")


def test_the_trains_drop_stands_until_every_verify_todo_passed_again(
        cluster: Cluster) -> None:
    c = cluster
    repos = make_repos(c.root, TRAIN_NAMES)
    train_catalog(c)
    c.start_worker("libz", extra=["--repo", "core"])
    for plan in ("PLAN-001", "PLAN-002"):
        res = c.cli("plan", "sweep", plan, "--wait", "--json", timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
    two = c.cli_json("change", "status", "PLAN-002")
    assert two["landable"] is True, two["blockers"]
    own = {n: r["candidate"] for n, r in two["repos"].items()}

    assert c.cli_json("change", "queue", "PLAN-001", "PLAN-002") == {
        "train": ["PLAN-001", "PLAN-002"]}
    res = c.cli("change", "queue", "--land", timeout=180)
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["PLAN-002", "PLAN-001"], lines
    assert lines[1] == "PLAN-001: landed", lines

    doc = c.cli_json("change", "status", "PLAN-002")
    reason = doc["reason"]
    assert "TODO-251" in reason and "exit 5" in reason and "one.txt is here" in reason, reason
    assert "[sweep TODO-251-" in reason, reason
    # the human render says the reason whole (its "[sweep ...]" is no markup)
    assert lines[0] == f"PLAN-002: failed_verification - {reason}", lines
    assert {n: r["candidate"] for n, r in doc["repos"].items()} == own  # its own commits
    assert doc["state"] == "failed_verification"
    assert ("train", "PLAN-002") in kinds(doc) and doc["landable"] is False
    assert {n: (r["state"], r["verified_by"]) for n, r in doc["repos"].items()} == {
        n: ("drafted", []) for n in TRAIN_NAMES}
    dry = refused(c, "change", "land", "PLAN-002", "--dry-run")
    assert ("train", "PLAN-002") in kinds(dry)

    # one of its two verify todos passes again on its own commits: the drop stands
    c.cli_json("todo", "run", "TODO-251", "--wait", "--ignore-blockers", "--no-sync")
    doc = c.cli_json("change", "status", "PLAN-002")
    assert doc["state"] == "failed_verification" and ("train", "PLAN-002") in kinds(doc)
    assert {r["state"] for r in doc["repos"].values()} == {"drafted"}
    # ... and the other: verified again (its base moved since: PLAN-001 landed first)
    c.cli_json("todo", "run", "TODO-252", "--wait", "--ignore-blockers", "--no-sync")
    doc = c.cli_json("change", "status", "PLAN-002")
    assert doc["state"] != "failed_verification" and doc["reason"] is None
    assert ("train", "PLAN-002") not in kinds(doc)
    assert {v["verdict"] for v in doc["verify"].values()} == {"passed"}
    assert [p[0] for p in repos.pushes()] == TRAIN_NAMES  # PLAN-001's landing only
    from coordination.catalog.audit.log import log_path, read

    [entry] = [e for e in read(log_path(c.eco)) if e["op"] == "change.land"]
    assert entry["ids"] == ["PLAN-001"] and entry["decision"]["via"] == "change queue --land"
    assert entry["decision"]["landed_shas"] == {n: repos.remote_head(n) for n in TRAIN_NAMES}


# -- status, --json, --dry-run and the web view agree ---------------------------------------


def agree(c: Cluster, base: str) -> tuple[bool, list[tuple[str, str]], dict[str, Any]]:
    """`change status --json`, `land --dry-run --json`, the human status and the web
    view's documents (/api/changes/PLAN, /api/changes) say the same: landable, and
    the same blockers; (landable, blockers, the status document)."""
    doc = status(c)
    res = c.cli("change", "land", PLAN, "--dry-run", "--json")
    dry = json.loads(res.stdout)
    assert res.returncode == (0 if doc["landable"] else 1), (res.stdout, res.stderr)
    assert dry["landable"] is doc["landable"]
    assert kinds(dry) == kinds(doc), (dry["blockers"], doc["blockers"])
    assert [b["why"] for b in dry["blockers"]] == [b["why"] for b in doc["blockers"]]
    human = c.cli("change", "status", PLAN)
    assert human.returncode == 0, human.stderr
    assert ("\nlandable\n" in human.stdout) is doc["landable"], human.stdout
    for b in doc["blockers"]:
        assert f"  {b['kind']} {b['id']}: " in human.stdout, human.stdout
    # signed in, the view reads git as the CLI does (a stranger's read leaves it out, says so)
    with urllib.request.urlopen(_signed_in(f"{base}/api/changes/{PLAN}"), timeout=10) as r:
        web = json.loads(r.read())
    assert web["landable"] is doc["landable"] and kinds(web) == kinds(doc)
    assert web["state"] == doc["state"] and web["left_out"] is None
    with urllib.request.urlopen(_signed_in(f"{base}/api/changes"), timeout=10) as r:
        [line] = [x for x in json.loads(r.read()) if x["plan"] == PLAN]
    # (a landed or reverted change: no landing is ahead, the list counts no blockers)
    settled = doc["state"] in ("landed", "reverted")
    assert line["landable"] is doc["landable"]
    assert line["blockers"] == (0 if settled else len(doc["blockers"])), (line, doc["state"])
    assert doc["bases_checked"] is True  # bare remotes on this machine: read from files
    return doc["landable"], kinds(doc), doc


AUTH = "ana:pw-of-ana"


def _signed_in(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={
        "Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()})


def test_status_dry_run_and_the_web_view_agree_on_a_moved_base_a_landing_and_a_revert(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    write_catalog(c, broken=False)
    start(c)
    sweep(c, expect=0)
    _, base = serve(c, AUTH)
    assert agree(c, base)[:2] == (True, [])

    # someone else pushes to core: its base moved on the remote (nothing fetched yet)
    pushed = repos.push_from_elsewhere("core")
    landable, blockers, doc = agree(c, base)
    assert (landable, blockers) == (False, [("repo", "core")])
    assert f"moved ({doc['repos']['core']['base_sha'][:12]} -> {pushed[:12]})" in \
        doc["blockers"][0]["why"]
    assert doc["repos"]["core"]["base_now"] == {"sha": pushed, "checked": True, "how": "files"}
    # landing merges it into the branch (unverified), the verify todos pass on it: it lands
    res = c.cli("change", "land", PLAN)
    assert res.returncode == 1 and "unverified: verify again" in res.stderr, res.stderr
    for tid in ("TODO-101", "TODO-102", "TODO-103"):
        c.cli_json("todo", "run", tid, "--wait", "--ignore-blockers", "--no-sync")
    assert agree(c, base)[:2] == (True, [])
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"
    # the landing is audited (who, when, each repo's landed SHA) and in the history
    from coordination.catalog.audit.log import log_path, read

    [entry] = [e for e in read(log_path(c.eco)) if e["op"] == "change.land"]
    assert entry["ids"] == [PLAN] and entry["who"] and entry["at"]
    assert entry["decision"]["state"] == "landed" and entry["decision"]["via"] == "change land"
    assert entry["decision"]["landed_shas"] == {n: repos.remote_head(n) for n in NAMES}
    found = c.cli_json("history", "search", PLAN, "--kind", "edit")
    assert [r["op"] for r in found if r.get("op") in ("change.land", "change.revert")] == [
        "change.land"], found

    # landed: nothing to land (0.4's status said landable, no blocker)
    landable, blockers, doc = agree(c, base)
    assert doc["state"] == "landed" and landable is False
    assert blockers == [("repo", n) for n in NAMES] + [("state", PLAN)]
    assert all("already landed" in b["why"] for b in doc["blockers"][:3])
    assert "coord change revert PLAN-001" in doc["blockers"][3]["why"]

    assert c.cli_json("change", "revert", PLAN)["state"] == "reverted"
    landable, blockers, doc = agree(c, base)
    assert doc["state"] == "reverted" and landable is False
    assert blockers == [("repo", n) for n in NAMES] + [("state", PLAN)]
    assert all("landing would merge it into the branch and verify again" in b["why"]
               for b in doc["blockers"][:3])
    assert "was reverted" in doc["blockers"][3]["why"]
