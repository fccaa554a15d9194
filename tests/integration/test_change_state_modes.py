"""A change's state follows the catalog, not the Redis in use (#50): landed in embedded
mode, it is known with COORD_REDIS_URL set (status, revert), and reverted there, the
embedded mode knows that too. 0.4 read `drafted / never landed` and refused the revert.

Real git (bare remotes), the catalog's embedded redis-server and the test's
redis-server; `coord` as a subprocess in each mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.change_repos import catalog_yaml, make_repos

pytestmark = pytest.mark.timeout(180)

NAMES = ["libz", "core"]
PLAN = "PLAN-001"


def test_a_change_landed_embedded_is_known_distributed_and_back(
        tmp_path: Path, redis_url: str) -> None:
    repos = make_repos(tmp_path, NAMES)
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text(catalog_yaml(NAMES))
    base = {n: repos.remote_head(n) for n in NAMES}
    embedded = {k: v for k, v in os.environ.items() if k != "COORD_REDIS_URL"}
    distributed = dict(os.environ, COORD_REDIS_URL=redis_url)

    def run(env: dict[str, str], *args: str, expect: int = 0) -> tuple[dict, str]:  # type: ignore[type-arg]
        out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(cat),
                              *args, "--json"], env=env, text=True, capture_output=True,
                             timeout=120)
        assert out.returncode == expect, (args, out.stdout[-2000:], out.stderr[-2000:])
        return json.loads(out.stdout), out.stderr

    run(embedded, "plan", "sweep", PLAN, "--wait")
    landed, _ = run(embedded, "change", "land", PLAN)
    assert landed["state"] == "landed"
    heads = {n: repos.remote_head(n) for n in NAMES}
    assert heads != base

    # the web view writes nothing: it says where the newer state is kept, and how to read it
    from coordination.change.mirror import kept_elsewhere
    from coordination.runtime.context import Runtime
    from coordination.settings import Settings

    rt = Runtime.create(Settings(redis_url=redis_url))
    said = kept_elsewhere(rt, cat, PLAN)
    assert said is not None and said["state"] == "landed", said
    assert said["from"].startswith("the catalog's embedded Redis")
    assert said["how"] == f"coord change status {PLAN} carries it over"

    doc, err = run(distributed, "change", "status", PLAN)
    assert doc["state"] == "landed", doc  # 0.4: drafted, never landed
    assert kept_elsewhere(rt, cat, PLAN) is None  # carried over: nothing newer kept
    assert {n: r["landed"] for n, r in doc["repos"].items()} == heads
    assert "carried over from the catalog's embedded Redis" in err, err
    reverted, _ = run(distributed, "change", "revert", PLAN)  # 0.4: refused, not landed
    assert reverted["state"] == "reverted", reverted
    assert all(repos.remote_head(n) != heads[n] for n in NAMES)

    doc, err = run(embedded, "change", "status", PLAN)  # the other way: reverted there
    assert doc["state"] == "reverted", doc
    assert "carried over from the Redis at " in err, err
    doc, err = run(embedded, "change", "status", PLAN)  # once: nothing newer to carry
    assert doc["state"] == "reverted" and "carried over" not in err
