"""Carrying on a landing under way goes by the landing rule and the anchor every time, and an
undo under way only by its lander's seal (#59).

Real git (bare remotes logging every push), a real redis-server, a real `coord worker`,
`coord change land` processes; every coord process signs and requires signed evidence.

1. A landing is killed after its prepare (its signed manifest stored, nothing pushed);
   the plan is swept again and that sweep's gate is rejected; a keyless writer sets the
   change's state back to ``landing`` (as it stood). `change land` must not push the old
   manifest: it is refused, naming the rejected gate (0.5 pushed it).
2. A landed change; a keyless writer sets its state back to ``landing`` with a reason
   (an undo "under way"): `change land` must revert nothing, naming the undo record
   (0.5 pushed a revert of every repo).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from tests.integration.change_repos import Repos, json_str
from tests.integration.helpers import PLAN, Cluster, wait_until
from tests.integration.landing import NAMES, keyed, start, status, untouched, write_catalog

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def by_command(c: Cluster) -> None:
    """The catalog's change lands by a command, which waits in libz (the first repo, so
    nothing is pushed yet) while a file hold is beside the catalog."""
    cmd = (f'while [ -f {c.root}/hold ]; do touch {c.root}/held; sleep 0.05; done; '
           'git push -q origin HEAD:refs/heads/$COORD_CHANGE_BASE')
    text = c.eco.read_text().replace("change: {branch: chg}", "change: {branch: chg, land: command}")
    for n in NAMES:
        text = text.replace(f"  - {{name: {n}, path: checkouts/{n}}}",
                            f"  - {{name: {n}, path: checkouts/{n}, land_command: {json_str(cmd)}}}")
    c.eco.write_text(text)


def approved_sweep(c: Cluster, *more: str) -> str:
    sid = str(c.cli_json("plan", "sweep", PLAN, *more)["sweep_id"])
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=90)
    res = c.cli("approve", "TODO-050", "--sweep", sid)
    assert res.returncode == 0, res.stderr
    assert c.wait_sweep(sid, timeout=90)["status"] == "succeeded"
    return sid


def test_a_killed_landing_is_not_carried_on_past_a_newer_rejection(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, gate=True, broken=False)
    by_command(c)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    approved_sweep(c)
    assert status(c)["landable"] is True

    (c.root / "hold").touch()
    proc = c.popen("change", "land", PLAN)
    wait_until(lambda: (c.root / "held").exists() or proc.poll() is not None, 60,
               "the landing to reach libz's land command")
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (c.root / "hold").unlink()
    key = c.rt.keys.change(PLAN)
    assert raw.hget(key, "state") == "landing" and raw.hget(key, "manifest_sig")
    untouched(repos, base)

    s2 = str(c.cli_json("plan", "sweep", PLAN, "--again")["sweep_id"])
    c.wait_todo(s2, "TODO-050", {"awaiting_approval"}, timeout=90)
    res = c.cli("reject", "TODO-050", "--sweep", s2, "--comment", "not this one")
    assert res.returncode == 0, res.stderr
    c.wait_sweep(s2, timeout=90)
    raw.hset(key, "state", "landing")  # the keyless writer: carry the old landing on

    res = c.cli("change", "land", PLAN, "--json", timeout=120)
    assert res.returncode == 1, (res.stdout, res.stderr)
    doc: dict[str, Any] = json.loads(res.stdout)
    assert ("gate", "TODO-050") in [(b["kind"], b["id"]) for b in doc["blockers"]], doc
    assert any("rejected" in b["why"] and "carrying on the landing under way" in b["why"]
               for b in doc["blockers"]), doc
    untouched(repos, base)  # the old manifest never reached a remote


def test_an_undo_nobody_sealed_reverts_nothing(landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, gate=True, broken=False)
    start(c)
    approved_sweep(c)
    landed = c.cli_json("change", "land", PLAN, "--wait")
    assert landed["state"] == "landed", landed
    heads = {n: repos.remote_head(n) for n in NAMES}
    pushed = repos.pushes()

    key = c.rt.keys.change(PLAN)
    raw.hset(key, mapping={"state": "landing", "reason": "the release was bad"})
    res = c.cli("change", "land", PLAN, "--json", timeout=120)
    assert res.returncode == 1, (res.stdout, res.stderr)
    doc = json.loads(res.stdout)
    [b] = doc["blockers"]
    assert (b["kind"], b["id"]) == ("evidence", PLAN), doc
    assert f"undo record of change {PLAN}" in b["why"] and "unsigned" in b["why"], b
    assert {n: repos.remote_head(n) for n in NAMES} == heads  # nothing reverted
    assert repos.pushes() == pushed
