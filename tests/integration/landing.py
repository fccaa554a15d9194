"""The landing tests' world: three repos (libz, core, api) changed on one branch, a catalog
of an edit and a verify todo per repo, and the calls a test makes on it (sweep, status,
a refused land, the web view's answer)."""

from __future__ import annotations

import base64

import json
import subprocess
from typing import Any

from tests.integration.change_repos import Repos, edits_catalog_lines, json_str
from tests.integration.helpers import PLAN, Cluster, wait_serving
from tests.servers import free_port

NAMES = ["libz", "core", "api"]
#: every verify todo checks its own repo's candidate (its cwd): api's is broken
CHECK = 'test ! -f BROKEN || { echo "BROKEN in $COORD_REPO" >&2; exit 3; }'


def write_catalog(c: Cluster, *, gate: bool = False, broken: bool = True,
                  notes: bool = False, pre: bool = False, hold: bool = False) -> None:
    """An edit+commit todo per repo (api's leaves BROKEN when ``broken``), then a verify
    todo per repo (TODO-101..), each handed every repo's candidate; ``gate``: a gate
    TODO-050 after the verify todos; ``notes``: a todo TODO-201 of no verify, which
    exits 7 while a file fail-notes is beside the catalog (``pre``: after TODO-202, which
    exits 8 while a file fail-pre is); ``hold``: a todo TODO-203 of no verify after the
    verify todos that ends only once a file go is beside the catalog."""
    lines, edits = edits_catalog_lines(NAMES, "change", {
        n: "echo edited > CHANGED" + (" && touch BROKEN" if broken and n == "api" else "")
        for n in NAMES}, PLAN)
    verifies = []
    # ... and fails too while a file fail-<repo> is beside the catalog (the same candidates)
    check = (f"{CHECK}; test ! -f {c.root}/fail-$COORD_REPO || "
             '{ echo "failing in $COORD_REPO" >&2; exit 4; }')
    for i, n in enumerate(NAMES):
        tid = f"TODO-{101 + i}"
        verifies.append(tid)
        lines.append(f"    - {{id: {tid}, task: verify {n}, repo: {n}, plan: {PLAN}, "
                     f"verify: true, run: {json_str(check)}, blocked_by: [{', '.join(edits)}]}}")
    if notes:
        run = f"test ! -f {c.root}/fail-notes || exit 7"
        after = ", blocked_by: [TODO-202]" if pre else ""
        lines.append(f"    - {{id: TODO-201, task: release notes, repo: libz, plan: {PLAN}, "
                     f"run: {json_str(run)}{after}}}")
    if pre:
        run = f"test ! -f {c.root}/fail-pre || exit 8"
        lines.append(f"    - {{id: TODO-202, task: notes draft, repo: core, plan: {PLAN}, "
                     f"run: {json_str(run)}}}")
    if hold:
        run = f"until test -f {c.root}/go; do sleep 0.05; done"
        lines.append(f"    - {{id: TODO-203, task: announce, repo: core, plan: {PLAN}, "
                     f"run: {json_str(run)}, timeout: 90, "
                     f"blocked_by: [{', '.join(verifies)}]}}")
    if gate:
        lines.append(f"    - {{id: TODO-050, task: approve the landing, repo: api, plan: {PLAN}, "
                     f"gate: {{approvals: 1}}, blocked_by: [{', '.join(verifies)}]}}")
    lines.append("  dependencies:")
    lines += [f"    - {{id: DEP-00{i}, consumer: {NAMES[i]}, provider: {NAMES[i - 1]}}}"
              for i in range(1, len(NAMES))]
    c.eco.write_text("\n".join(lines) + "\n")


def start(c: Cluster) -> None:
    c.start_worker(NAMES[0], extra=[a for n in NAMES[1:] for a in ("--repo", n)])


def sweep(c: Cluster, expect: int, *more: str) -> str:
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", *more, timeout=120)
    assert res.returncode == expect, res.stderr[-3000:]
    return str(json.loads(res.stdout)["sweep_id"])


def status(c: Cluster) -> dict[str, Any]:
    return c.cli_json("change", "status", PLAN)  # type: ignore[no-any-return]


def refused(c: Cluster, *args: str) -> dict[str, Any]:
    """`coord ARGS --json` exiting 1 with a not_ready document."""
    res = c.cli(*args, "--json", timeout=120)
    assert res.returncode == 1, (res.stdout, res.stderr)
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def untouched(repos: Repos, base: dict[str, str]) -> None:
    assert repos.pushes() == []
    assert {n: repos.remote_head(n) for n in NAMES} == base


def lands_once_run_again(c: Cluster, sid: str, tid: str) -> None:
    """``tid`` run again for real in the plan's sweep ``sid`` (resumed with only it): the
    sweep succeeds, the change is landable and lands."""
    again = c.cli_json("sweep", "resume", sid, "--only", tid)
    assert again["rerun"] == [tid], again
    assert c.wait_sweep(sid, timeout=90)["status"] == "succeeded"
    doc = status(c)
    assert doc["landable"] is True, doc["blockers"]
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"


def keyed(c: Cluster) -> Any:
    """Every coord process signs and requires signed evidence; the raw client a writer
    without the key writes with."""
    import redis

    c.env.update(COORD_SIGNING_KEY="k" * 32, COORD_REQUIRE_SIGNED="1")
    return redis.Redis.from_url(c.redis_url, decode_responses=True)


def kinds(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["kind"], b["id"]) for b in doc["blockers"]]


def serve(c: Cluster, auth: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """`coord ui` on the cluster's Redis, as a subprocess; its base URL. ``auth``:
    COORD_UI_AUTH (user:password): a signed-in view reads git as the CLI does."""
    port = free_port()
    proc = c.popen("ui", "--port", str(port), stdout=subprocess.DEVNULL,
                   env={"COORD_UI_AUTH": auth} if auth else None)
    base = f"http://127.0.0.1:{port}"

    wait_serving(proc, base, {"Authorization": "Basic " + base64.b64encode(
        auth.encode()).decode()} if auth else None)
    return proc, base
