"""Results between todos and `coord resources`, with real workers and the CLI.

A version built in one repo reaches a todo of another repo two steps later (through
a third), `plan sweep --wait` keeps it in the catalog, and `todo show --json` and
`sweep status --json` show it; while a todo holds a repo's only slot, `coord
resources --json` from another process names it and the todo waiting behind it."""

from __future__ import annotations

import pytest

from tests.integration.helpers import Cluster, T, wait_until

pytestmark = pytest.mark.timeout(120)


def test_a_version_built_in_one_repo_reaches_a_later_repo(cluster: Cluster) -> None:
    out = cluster.root / "pinned.txt"
    cluster.write_catalog({"lib": 1, "app": 1, "svc": 1}, [
        T("TODO-001", "lib", "echo VERSION=3.4.5 >> $COORD_OUTPUT"),
        T("TODO-002", "app", "echo \"{\\\"WHEEL\\\": \\\"lib-$COORD_IN_TODO_001_VERSION\\\"}\" "
          "> $COORD_OUTPUT", blocked_by=["TODO-001"]),
        T("TODO-003", "svc", f"echo \"$COORD_IN_TODO_001_VERSION $COORD_IN_TODO_002_WHEEL\" > {out}",
          blocked_by=["TODO-002"]),
    ])
    cluster.start_workers(["lib", "app", "svc"])
    doc = cluster.cli_json("plan", "sweep", "PLAN-001", "--wait")
    assert doc["status"] == "succeeded", doc
    assert out.read_text().strip() == "3.4.5 lib-3.4.5"
    st = cluster.cli_json("sweep", "status", doc["sweep_id"])
    assert st["todos"]["TODO-001"]["outputs"] == {"VERSION": "3.4.5"}
    assert st["todos"]["TODO-002"]["outputs"] == {"WHEEL": "lib-3.4.5"}
    shown = cluster.cli_json("todo", "show", "TODO-002")  # after the sync --wait did
    assert shown["outputs"] == {"WHEEL": "lib-3.4.5"} and shown["status"] == "completed"


def test_resources_shows_the_holder_and_who_waits(cluster: Cluster) -> None:
    gate = cluster.root / "go"
    hold = f"while [ ! -f {gate} ]; do sleep 0.05; done"
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", hold, resources=["db"]),
        T("TODO-002", "web", hold, resources=["db"]),
    ], resources={"db": 1})
    cluster.start_workers(["api", "web"])
    sid = cluster.start_sweep()
    try:
        def holding() -> dict | None:
            doc = cluster.cli_json("resources")
            db = doc["resources"][0]
            return doc if db["used"] == 1 and db["waiting"] else None

        doc = wait_until(holding, 30, "one todo holding the db slot and the other waiting")
        (db,) = doc["resources"]
        (slot,) = db["slots"]
        holder = slot["holder"]
        assert holder["sweep_id"] == sid and holder["todo_id"] in ("TODO-001", "TODO-002")
        assert holder["worker"] and holder["since"] and db["capacity"] == 1
        other = "TODO-002" if holder["todo_id"] == "TODO-001" else "TODO-001"
        assert [w["todo_id"] for w in db["waiting"]] == [other]
        # the holder's repo slot is held too; the waiter's repo slot is free
        used = {r["name"]: r["used"] for r in doc["repos"]}
        assert used == {"api": int(holder["todo_id"] == "TODO-001"),
                        "web": int(holder["todo_id"] == "TODO-002")}
    finally:
        gate.touch()
    assert cluster.wait_sweep(sid)["status"] == "succeeded"
