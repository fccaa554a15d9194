"""What is read after something went wrong (#59, found while verifying 0.5):

- the web view degrades, never errors: served without COORD_UI_AUTH, a stranger's
  ``/api/changes`` and ``/api/changes/PLAN`` answered 400 ("coord runs no git here") for
  a change that is interrupted, revert-interrupted or has a rejected gate; now they
  answer with what needs no git (states, reasons, ids) and say what they left out;
- ``land --dry-run`` after an interrupted landing reads the remotes: it said ready
  although the next repo's remote had moved.

Real git (bare remotes; a pre-receive hook holds core's push until a file appears), a
real redis-server, a real `coord worker`, `coord change land|revert` processes killed
with SIGKILL while core's push is held, and `coord ui` as a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import Repos, catalog_yaml, make_repos
from tests.integration.helpers import PLAN, Cluster, wait_until
from tests.integration.landing import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NAMES = ["libz", "core", "api"]


def hold_pushes(repos: Repos, name: str, root: Path, what: str) -> None:
    """``name``'s remote holds every push (its pre-receive hook) until go-<what> is beside
    the catalog, having written held-<what>."""
    hook = repos.remote(name) / "hooks" / "pre-receive"
    hook.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        cat > /dev/null
        if [ ! -f {root}/go-{what} ]; then
          touch {root}/held-{what}
          while [ ! -f {root}/go-{what} ]; do sleep 0.05; done
        fi
        """))
    hook.chmod(0o755)


def killed_while_held(c: Cluster, *args: str, what: str) -> None:
    proc = c.popen(*args)
    wait_until(lambda: (c.root / f"held-{what}").exists() or proc.poll() is not None, 90,
               f"{' '.join(args)} to reach core's push")
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def with_urls(text: str, repos: Repos) -> str:
    """Each repo's ``url:`` in the catalog, as `coord init` writes it (0.5's stranger
    then got 400: checking a remote's URL runs git)."""
    for n in NAMES:
        text = text.replace(f"path: checkouts/{n}", f"path: checkouts/{n}, "
                            f"url: {repos.remote(n)}")
    return text


@pytest.fixture
def swept(cluster: Cluster) -> tuple[Cluster, Repos]:
    c = cluster
    repos = make_repos(c.root, NAMES)
    c.eco.write_text(with_urls(catalog_yaml(NAMES), repos))
    c.start_worker(NAMES[0], extra=[a for n in NAMES[1:] for a in ("--repo", n)])
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return c, repos


def stranger(base: str, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{base}{path}", timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def degraded(base: str, state: str) -> dict[str, Any]:
    """The stranger's two change documents: 200, the state, and what was left out said."""
    code, doc = stranger(base, f"/api/changes/{PLAN}")
    assert code == 200, doc
    assert doc["state"] == state, doc
    assert doc["left_out"] and "signed in" in doc["left_out"], doc
    code, rows = stranger(base, "/api/changes")
    assert code == 200, rows
    [line] = [r for r in rows if r["plan"] == PLAN]
    assert line["state"] == state and line["error"] is None, line
    return doc  # type: ignore[no-any-return]


def test_an_interrupted_landing_reads_for_a_stranger_and_its_dry_run_asks_the_remotes(
        swept: tuple[Cluster, Repos]) -> None:
    c, repos = swept
    _, base = serve(c)
    hold_pushes(repos, "core", c.root, "land")
    killed_while_held(c, "change", "land", PLAN, "--json", what="land")
    assert [p[0] for p in repos.pushes()] == ["libz"]  # core's push was held, then killed
    assert c.cli_json("change", "status", PLAN)["state"] == "interrupted"

    doc = degraded(base, "interrupted")
    assert f"coord change land {PLAN}" in doc["reason"] and doc["resume"]
    assert list(doc["repos"]) == NAMES  # ids and states, without git
    assert doc["repos"]["libz"]["landed"] is not None

    # Someone pushes to core meanwhile: the dry run reads the remote and says so.
    (repos.remote("core") / "hooks" / "pre-receive").unlink()
    repos.push_from_elsewhere("core")
    res = c.cli("change", "land", PLAN, "--dry-run", "--json", timeout=120)
    assert res.returncode == 1, (res.stdout, res.stderr)  # 0.5: exit 0, ready
    out = json.loads(res.stdout)
    assert any(b["id"] == "core" and "moved" in b["why"] for b in out["blockers"]), out
    assert [p[0] for p in repos.pushes()] == ["libz", "core"]  # (the other push only)


def test_a_revert_interrupted_change_reads_for_a_stranger(
        swept: tuple[Cluster, Repos]) -> None:
    c, repos = swept
    assert c.cli_json("change", "land", PLAN, "--wait", timeout=120)["state"] == "landed"
    _, base = serve(c)
    hold_pushes(repos, "core", c.root, "revert")
    killed_while_held(c, "change", "revert", PLAN, "--json", what="revert")
    assert c.cli_json("change", "status", PLAN)["state"] == "revert_interrupted"
    doc = degraded(base, "revert_interrupted")
    assert f"coord change revert {PLAN}" in doc["reason"]


def test_a_rejected_gate_reads_for_a_stranger(cluster: Cluster, browser: Any) -> None:
    c = cluster
    text = with_urls(catalog_yaml(NAMES), make_repos(c.root, NAMES))
    gate = (f"    - {{id: TODO-050, task: approve, repo: api, plan: {PLAN}, "
            "gate: {approvals: 1}, blocked_by: [TODO-103]}\n")
    c.eco.write_text(text.replace("  dependencies:\n", gate + "  dependencies:\n"))
    c.start_worker(NAMES[0], extra=[a for n in NAMES[1:] for a in ("--repo", n)])
    sid = c.start_sweep(strategy="eager")
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=120)
    res = c.cli("reject", "TODO-050", "--sweep", sid, "--json")
    assert res.returncode == 0, res.stderr
    c.wait_sweep(sid, 60)
    assert c.cli_json("change", "status", PLAN)["state"] == "rejected"
    _, base = serve(c)
    doc = degraded(base, "rejected")
    assert "TODO-050" in (doc["reason"] or ""), doc
    # The pages themselves (a real Chromium): the state and what was left out, said.
    from tests.integration.browser import text_of

    browser.get(f"{base}/changes/{PLAN}")
    wait_until(lambda: "read without git" in text_of(browser, "#change-left-out"), 30,
               "the change page to say what it left out")
    assert "rejected" in text_of(browser, "main")
    browser.get(f"{base}/changes")
    wait_until(lambda: "read without git" in text_of(browser, "#changes-left-out"), 30,
               "the changes page to say what it left out")
