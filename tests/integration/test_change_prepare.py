"""A repo's `prepare:` (#50): run once in each new change worktree of the repo, before
its todos there (a C extension built, node modules installed: 0.4 had nowhere to say it,
and a library's speedups tests were skipped on every candidate); its output in `change
status` and the web view's document; its failure a named blocker.

Real git (bare remotes), a real redis-server and a real `coord worker`."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.integration.change_repos import catalog_yaml, json_str, make_repos
from tests.integration.helpers import Cluster
from tests.integration.landing import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PLAN = "PLAN-001"
NAMES = ["libz", "core"]


def test_prepare_runs_once_per_new_worktree_before_its_todos_and_a_failure_blocks(
        cluster: Cluster) -> None:
    c = cluster
    make_repos(c.root, NAMES)
    log = c.root / "prepared.log"
    good = f'echo "building $COORD_CHANGE_BRANCH"; echo "$PWD" >> {log}'
    bad = 'echo "no C compiler found" >&2; exit 3'
    # each repo's edit runs only where its prepare ran first; a second todo in libz
    text = catalog_yaml(NAMES, edit_run=f"grep -qx \"$PWD\" {log} && echo edited > CHANGED")
    text = text.replace("{name: libz, path: checkouts/libz}",
                        f"{{name: libz, path: checkouts/libz, prepare: {json_str(good)}}}")
    text = text.replace("{name: core, path: checkouts/core}",
                        f"{{name: core, path: checkouts/core, prepare: {json_str(bad)}}}")
    text = text.replace("  dependencies:", "    - {id: TODO-150, task: notes, repo: libz, "
                        "plan: PLAN-001, run: \"true\", blocked_by: [TODO-001]}\n"
                        "  dependencies:")
    c.eco.write_text(text)
    c.start_worker("libz", extra=["--repo", "core"])
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=180)
    assert res.returncode == 1, res.stderr[-2000:]
    sid = json.loads(res.stdout)["sweep_id"]
    assert c.checkpoint(sid, "TODO-001")["status"] == "succeeded"
    assert c.checkpoint(sid, "TODO-150")["status"] == "succeeded"
    core = c.checkpoint(sid, "TODO-002")
    assert core["status"] == "failed"
    assert "prepare of core failed (exit 3): no C compiler found" in str(core.get("reason"))

    doc = c.cli_json("change", "status", PLAN)
    libz_wt = doc["repos"]["libz"]["worktree"]
    # once in libz's new worktree, though two of its todos ran there
    assert log.read_text().splitlines() == [libz_wt]
    assert doc["prepare"]["libz"]["ok"] is True
    assert doc["prepare"]["libz"]["output"].strip() == "building chg"
    assert doc["prepare"]["core"]["ok"] is False and doc["prepare"]["core"]["exit_code"] == 3
    assert "no C compiler found" in doc["prepare"]["core"]["output"]
    blocker = [b for b in doc["blockers"] if (b["kind"], b["id"]) == ("repo", "core")]
    assert blocker and blocker[0]["why"].startswith(
        "prepare failed (exit 3): no C compiler found"), doc["blockers"]
    assert doc["landable"] is False
    human = c.cli("change", "status", PLAN).stdout
    assert "prepare libz: ok - building chg" in human, human
    assert "prepare core: failed (exit 3) - no C compiler found" in human, human
    dry = c.cli("change", "land", PLAN, "--dry-run", "--json")
    assert dry.returncode == 1
    assert ("repo", "core") in [(b["kind"], b["id"]) for b in json.loads(dry.stdout)["blockers"]]
    ui, base = serve(c)
    with urllib.request.urlopen(f"{base}/api/changes/{PLAN}", timeout=10) as r:
        web = json.loads(r.read())
    assert web["prepare"] == doc["prepare"]

    # fixed: the next sweep prepares core's worktree (it never was) and the change is landable
    assert c.cli("repo", "update", "core", "--prepare", good).returncode == 0
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = c.cli_json("change", "status", PLAN)
    assert doc["prepare"]["core"]["ok"] is True
    assert log.read_text().splitlines() == [libz_wt, doc["repos"]["core"]["worktree"]]
    assert doc["landable"] is True, doc["blockers"]
