"""The result cache end to end: a real `coord worker` computes keys in a real git
checkout, a re-sweep with nothing changed reuses every success (`cached`, naming the run,
in status, events and history), a changed file misses and `coord why` names it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import PLAN, Cluster, T

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def cache_every_repo(cluster: Cluster) -> None:
    """Every repo of the catalog opts in (cache: on a repo covers its todos)."""
    cluster.eco.write_text(cluster.eco.read_text().replace(
        "    concurrency: 1\n", "    concurrency: 1\n    cache: true\n"))


def commit_all(d: Path) -> None:
    """``d`` as a git checkout with what is in it committed."""
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=d, check=True, capture_output=True)


def checkouts_of_one_file(cluster: Cluster, repos: tuple[str, ...]) -> None:
    """Each of ``repos`` a git checkout with one committed file, src.txt."""
    for repo in repos:
        d = cluster.repo_dir(repo)
        (d / "src.txt").write_text("one\n")
        commit_all(d)


def test_unchanged_resweep_reuses_and_a_change_misses_with_why(cluster: Cluster) -> None:
    cluster.write_catalog({"cache-a": 1, "cache-b": 1}, [
        T("TODO-001", "cache-a", "echo built; cat src.txt"),
        T("TODO-002", "cache-b", "echo tested", blocked_by=["TODO-001"]),
    ])
    cache_every_repo(cluster)  # both repos opt in
    checkouts_of_one_file(cluster, ("cache-a", "cache-b"))
    cluster.start_workers({"cache-a": 1, "cache-b": 1})

    first = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", timeout=120)
    assert {t: v["status"] for t, v in first["todos"].items()} == {
        "TODO-001": "succeeded", "TODO-002": "succeeded"}

    second = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", timeout=120)
    sid = second["sweep_id"]
    assert second["status"] == "succeeded"
    for tid in ("TODO-001", "TODO-002"):
        entry = second["todos"][tid]
        assert entry["status"] == "cached", entry
        assert entry["cached_from"]["sweep_id"] == first["sweep_id"]
    assert "built" in second["todos"]["TODO-001"]["output_tail"]  # the reused output
    cached = [e for e in cluster.events(sid) if e["kind"] == "todo.cached"]
    assert sorted(e["todo_id"] for e in cached) == ["TODO-001", "TODO-002"]
    assert all(e["cached_from"]["sweep_id"] == first["sweep_id"] for e in cached)
    rows = cluster.cli_json("history", "search", "reused", "--kind", "todo")
    assert {(r["sweep_id"], r["status"]) for r in rows} >= {(sid, "cached")}
    assert all(first["sweep_id"] in r["reason"] for r in rows if r["sweep_id"] == sid)
    hit = cluster.cli_json("why", "TODO-002", "--sweep", sid)
    assert hit["outcome"] == "hit" and hit["cached_from"]["sweep_id"] == first["sweep_id"]

    (cluster.repo_dir("cache-a") / "src.txt").write_text("two\n")
    third = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", timeout=120)
    assert {t: v["status"] for t, v in third["todos"].items()} == {
        "TODO-001": "succeeded", "TODO-002": "succeeded"}
    miss = cluster.cli_json("why", "TODO-001")
    assert miss["sweep_id"] == third["sweep_id"] and miss["outcome"] == "miss"
    assert miss["nearest"]["sweep_id"] == first["sweep_id"]
    assert miss["changed"] == {"paths": ["src.txt"]}
    down = cluster.cli_json("why", "TODO-002", "--sweep", third["sweep_id"])
    assert down["changed"] == {"upstream": ["TODO-001"]}
    text = cluster.cli("why", "TODO-001")
    assert text.returncode == 0 and "files changed (1): src.txt" in text.stdout, text

    fourth = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", "--no-cache",
                              timeout=120)
    assert {v["status"] for v in fourth["todos"].values()} == {"succeeded"}
    assert cluster.cli_json("why", "TODO-001")["outcome"] == "bypassed"
    for bad in (("TODO-999",), ("FOO",), ("TODO-001", "--sweep", "nope")):
        res = cluster.cli("why", *bad)  # bad input: exit 2, naming what is wrong
        assert res.returncode == 2 and "error:" in res.stderr, res


def test_a_todo_run_alone_and_in_its_plans_sweep_share_one_key(cluster: Cluster) -> None:
    """Issue #39 (19): `todo run` of a dependent and a sweep of its plan compute one key
    when nothing changed (the todo before it counts by its key either way), so each
    reuses the other's run and `why` blames no upstream todo that did not change."""
    cluster.write_catalog({"cache-a": 1, "cache-b": 1}, [
        T("TODO-001", "cache-a", "echo built; cat src.txt"),
        T("TODO-002", "cache-b", "echo tested; cat src.txt", blocked_by=["TODO-001"]),
    ])
    cache_every_repo(cluster)
    checkouts_of_one_file(cluster, ("cache-a", "cache-b"))
    cluster.start_workers({"cache-a": 1, "cache-b": 1})

    swept = cluster.cli_json("plan", "sweep", PLAN, "--wait", timeout=120)
    assert swept["status"] == "succeeded"
    alone = cluster.cli_json("todo", "run", "TODO-002", "--wait", timeout=120)
    why = cluster.cli_json("why", "TODO-002", "--sweep", alone["sweep_id"])
    assert alone["todos"]["TODO-002"]["status"] == "cached", why
    assert why["outcome"] == "hit" and why["cached_from"]["sweep_id"] == swept["sweep_id"]

    (cluster.repo_dir("cache-b") / "src.txt").write_text("two\n")  # its own checkout
    alone = cluster.cli_json("todo", "run", "TODO-002", "--wait", timeout=120)
    assert alone["todos"]["TODO-002"]["status"] == "succeeded"
    why = cluster.cli_json("why", "TODO-002", "--sweep", alone["sweep_id"])
    assert why["changed"] == {"paths": ["src.txt"]}, why  # not TODO-001: it did not change
    again = cluster.cli_json("plan", "sweep", PLAN, "--again", "--wait", timeout=120)
    assert {t: v["status"] for t, v in again["todos"].items()} == {
        "TODO-001": "cached", "TODO-002": "cached"}
    assert again["todos"]["TODO-002"]["cached_from"]["sweep_id"] == alone["sweep_id"]


def test_a_tracked_link_leaving_the_checkout_is_in_the_key_or_why_says_uncached(
        cluster: Cluster) -> None:
    """#49 item 7: a tracked symlink to a file outside the checkout puts that file's
    content in the key (edited out there: a miss naming the link); one to a directory
    out there: the todo runs uncached and `coord why` says why."""
    cluster.write_catalog({"cache-a": 1}, [T("TODO-001", "cache-a", "cat conf")])
    cache_every_repo(cluster)
    outside = cluster.root / "outside"
    outside.mkdir()
    (outside / "app.conf").write_text("mode=a\n")
    d = cluster.repo_dir("cache-a")
    (d / "conf").symlink_to(outside / "app.conf")
    commit_all(d)
    cluster.start_workers({"cache-a": 1})

    def sweep() -> str:
        doc = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", timeout=120)
        return str(doc["todos"]["TODO-001"]["status"])

    assert sweep() == "succeeded"
    assert sweep() == "cached"
    (outside / "app.conf").write_text("mode=b\n")  # outside the checkout; git sees nothing
    assert sweep() == "succeeded"
    miss = cluster.cli_json("why", "TODO-001")
    assert miss["outcome"] == "miss" and miss["changed"] == {"inputs": ["conf"]}, miss

    (d / "deps").symlink_to(outside)  # a directory out there: no key
    subprocess.run(["git", "add", "deps"], cwd=d, check=True)
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit",
                    "-qm", "deps"], cwd=d, check=True)
    assert sweep() == "succeeded"
    assert sweep() == "succeeded"  # never cached
    text = cluster.cli("why", "TODO-001")
    assert text.returncode == 0 and "ran uncached" in text.stdout, text
    assert "deps is a tracked symlink to a directory outside the checkout" in text.stdout
