"""A landing or revert whose process died says so (#50): `interrupted` (a revert:
`revert_interrupted`) in `change status`, its `--json` and the web view's document, with
the command that carries it on; running that command carries it on to its end without
pushing anything twice. 0.4 showed `landing` for ever, and a revert killed half-way
`landed`.

On real git (bare remotes whose post-receive hooks log every push), a real redis-server,
a real `coord worker`, and `coord change land|revert` processes killed with SIGKILL
while their land (revert) command waits on a marker file in the second repo.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import catalog_yaml, make_repos
from tests.integration.helpers import Cluster, wait_until
from tests.integration.landing import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PLAN = "PLAN-001"
NAMES = ["libz", "core", "api"]


def hold(root: Path, what: str, push: str) -> str:
    """A command that, in core, waits until the file go-<what> is beside the catalog
    (having written held-<what>), then runs ``push``."""
    return (f'if [ "$COORD_CHANGE_REPO" = core ] && [ ! -f {root}/go-{what} ]; then '
            f"touch {root}/held-{what}; while [ ! -f {root}/go-{what} ]; do sleep 0.05; done; "
            f"fi; {push}")


@pytest.fixture
def held_landing(cluster: Cluster) -> tuple[Cluster, Any]:
    c = cluster
    repos = make_repos(c.root, NAMES)
    text = catalog_yaml(NAMES, land="command",
                        land_command=hold(c.root, "land",
                                          "git push -q origin HEAD:refs/heads/$COORD_CHANGE_BASE"))
    revert = hold(c.root, "revert",
                  "git push -q origin $COORD_CHANGE_REVERT_SHA:refs/heads/$COORD_CHANGE_BASE")
    text = text.replace("land_command:", f"revert_command: {json.dumps(revert)}, land_command:")
    c.eco.write_text(text)
    c.start_worker(NAMES[0], extra=[a for n in NAMES[1:] for a in ("--repo", n)])
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return c, repos


def killed_at_hold(c: Cluster, *args: str, what: str) -> None:
    """``coord ARGS`` started, SIGKILLed (its process group: its land command too) once it
    waits in core's command."""
    proc = c.popen(*args)
    wait_until(lambda: (c.root / f"held-{what}").exists() or proc.poll() is not None, 60,
               f"{' '.join(args)} to reach core's {what} command")
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def web(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/changes/{PLAN}", timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    with urllib.request.urlopen(f"{base}/api/changes", timeout=10) as r:
        [line] = [x for x in json.loads(r.read()) if x["plan"] == PLAN]
    assert line["state"] == doc["state"]
    return doc


def test_a_killed_landing_is_interrupted_and_land_carries_it_on_without_pushing_twice(
        held_landing: tuple[Cluster, Any]) -> None:
    c, repos = held_landing
    _, base = serve(c)
    killed_at_hold(c, "change", "land", PLAN, "--json", what="land")
    assert [p[0] for p in repos.pushes()] == ["libz"]  # libz landed, core's was held

    doc = c.cli_json("change", "status", PLAN)
    assert doc["state"] == "interrupted", doc
    assert doc["resume"] == f"coord change land {PLAN}"
    assert "the landing stopped half-way: its process ended (pid " in doc["reason"]
    assert f"run coord change land {PLAN} to carry it on" in doc["reason"]
    human = c.cli("change", "status", PLAN).stdout
    assert f"{PLAN} (chg, land: command): interrupted - the landing stopped half-way" in human
    page = web(base)
    assert (page["state"], page["resume"]) == ("interrupted", doc["resume"])

    (c.root / "go-land").touch()
    out = c.cli_json("change", "land", PLAN, "--wait", timeout=120)
    assert out["state"] == "landed", out
    # each repo pushed once: libz's landing was recognised on its remote, not pushed again
    assert [p[0] for p in repos.pushes()] == NAMES
    doc = c.cli_json("change", "status", PLAN)
    assert (doc["state"], doc["resume"]) == ("landed", None)
    assert web(base)["state"] == "landed"


def test_a_killed_revert_is_revert_interrupted_and_revert_carries_it_on(
        held_landing: tuple[Cluster, Any]) -> None:
    c, repos = held_landing
    (c.root / "go-land").touch()
    assert c.cli_json("change", "land", PLAN, "--wait", timeout=120)["state"] == "landed"
    landed = len(repos.pushes())
    _, base = serve(c)
    killed_at_hold(c, "change", "revert", PLAN, "--json", what="revert")
    assert [p[0] for p in repos.pushes()[landed:]] == ["api"]  # consumers first: core held

    doc = c.cli_json("change", "status", PLAN)
    assert doc["state"] == "revert_interrupted", doc  # 0.4: landed
    assert doc["resume"] == f"coord change revert {PLAN}"
    assert "the revert stopped half-way (reverted: api): its process ended" in doc["reason"]
    assert web(base)["state"] == "revert_interrupted"
    human = c.cli("change", "status", PLAN).stdout
    assert "revert_interrupted - the revert stopped half-way" in human

    (c.root / "go-revert").touch()
    out = c.cli_json("change", "revert", PLAN, timeout=120)
    assert out["state"] == "reverted", out
    assert [p[0] for p in repos.pushes()[landed:]] == ["api", "core", "libz"]
    doc = c.cli_json("change", "status", PLAN)
    assert (doc["state"], doc["resume"]) == ("reverted", None)
