"""The web view follows a real change through its landing, in a real headless Chromium:
real git (bare remotes), real Redis, `coord ui` as a subprocess.

The landing is held at each repo's push (the lander's fault hook) until the page shows
that repo `landing`; then it goes on. At the end every repo's element reads `landed`
without a reload, and the overview, the plan's page and the page of a sweep of the plan
that did not succeed (cancelled) say the change landed (where they said "active 0/5":
the plan's todos never succeeded in a sweep).

And a change published as pull requests on the fake GitHub: the page's pull request
table says what the forge says (approvals against the ruleset's count, who gave them,
why it would not merge, the link), asked by `coord ui` itself over HTTP.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import doc_screenshot, serve_ui, text_of
from tests.integration.change_repos import World, git
from tests.integration.helpers import ROOT, Cluster, wait_serving, wait_until
from tests.servers import free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

NAMES = ["libz", "core", "api", "web"]  # four edits and a verify todo: 5 todos


def repo_states(driver: Any) -> dict[str, str]:
    return dict(driver.execute_script(
        "const o = {}; for (const e of document.querySelectorAll('[data-repo]'))"
        " o[e.dataset.repo] = e.dataset.state; return o;"))


def attr(driver: Any, selector: str, name: str) -> str | None:
    got = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;", selector, name)
    return None if got is None else str(got)


def coord(catalog: Path, *args: str) -> Any:
    """``coord --file CATALOG ARGS --json``'s document."""
    out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(catalog),
                          *args, "--json"], cwd=ROOT, env=dict(os.environ), text=True,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def serve(catalog: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "ui",
         "--port", str(port)], cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    wait_serving(proc, base)
    return proc, base


def test_change_page_follows_a_landing_repo_by_repo(tmp_path: Path, redis_url: str,
                                                    browser: Any) -> None:
    w = World(tmp_path, NAMES)
    cands = w.draft()
    w.verify()
    ui, base = serve(w.catalog)
    try:
        browser.get(f"{base}/changes/{w.plan}")
        wait_until(lambda: repo_states(browser) == dict.fromkeys(NAMES, "verified"), 15,
                   "every repo verified on the page")
        assert attr(browser, "#change-state", "data-change-state") == "verified"
        assert attr(browser, "#landable", "data-landable") == "true"
        browser.execute_script("window.__notReloaded = 'marker';")

        # The landing waits at each repo's push until the page has shown it landing.
        reached: queue.Queue[str] = queue.Queue()
        go: queue.Queue[bool] = queue.Queue()

        def hold(point: str, repo: str) -> None:
            if point == "before-land":
                reached.put(repo)
                go.get(timeout=30)

        out: dict[str, Any] = {}

        def land() -> None:
            try:
                out["landed"] = w.lander(fault=hold).land()
            except BaseException as exc:  # reported by the main thread
                out["error"] = exc

        lander = threading.Thread(target=land, daemon=True)
        lander.start()
        for want in NAMES:  # providers first
            repo = reached.get(timeout=30)
            assert repo == want
            wait_until(lambda: repo_states(browser).get(repo) == "landing", 15,
                       f"{repo} landing on the page")
            assert attr(browser, "#change-state", "data-change-state") == "landing"
            if repo == "api":  # libz and core landed, api landing, web verified
                doc_screenshot(browser, "web-view-landing")
            go.put(True)
        lander.join(30)
        assert "error" not in out, out.get("error")
        assert out["landed"].state == "landed"

        wait_until(lambda: repo_states(browser) == dict.fromkeys(NAMES, "landed"), 15,
                   "every repo landed on the page")
        wait_until(lambda: attr(browser, "#change-state", "data-change-state") == "landed", 15,
                   "the change landed on the page")
        assert browser.execute_script("return window.__notReloaded") == "marker", "reloaded"
        for name in NAMES:  # the landed SHA, as the remote has it
            assert attr(browser, f'[data-repo="{name}"] [data-sha="landed"]', "title") == \
                cands[name] == w.repos.remote_head(name)
        # landed: nothing to land, as change status and land --dry-run say it, said as
        # what landed means, never listed as blockers (issue #63)
        wait_until(lambda: attr(browser, "#settled", "data-settled") == "landed", 15,
                   "the landed change's state on the page")
        assert "nothing to land" in text_of(browser, "#settled")
        assert not browser.find_elements("css selector", "#blockers")
        assert attr(browser, "#landable", "data-landable") == "false"
        assert text_of(browser, "#landable") == "landed"

        # A sweep of the plan that did not succeed (no worker: cancelled while queued).
        sid = str(coord(w.catalog, "plan", "sweep", w.plan)["sweep_id"])
        coord(w.catalog, "sweep", "cancel", sid)
        browser.get(f"{base}/sweeps/{sid}")
        wait_until(lambda: attr(browser, "#sweep-status", "data-status") == "cancelled", 15,
                   "the cancelled sweep's page")
        wait_until(lambda: attr(browser, "#change", "data-change-state") == "landed", 15,
                   "the change's state on the sweep's page")
        assert attr(browser, '#change a[data-change]', "href") == f"/changes/{w.plan}"

        # The overview and the plan's page: the change's state, not "active 0/5".
        browser.get(f"{base}/")
        row = f'[data-change="{w.plan}"]'
        wait_until(lambda: attr(browser, row, "data-change-state") == "landed", 15,
                   "the change's state on /")
        plan_row = text_of(browser, "main table:last-of-type")
        assert "change landed" in plan_row and "4/4 repos landed" in plan_row, plan_row
        browser.get(f"{base}/plans/{w.plan}")
        wait_until(lambda: attr(browser, "#change", "data-change-state") == "landed", 15,
                   "the change's state on the plan's page")
        browser.get(f"{base}/changes")
        wait_until(lambda: attr(browser, row, "data-change-state") == "landed", 15,
                   "the change listed on /changes")
        assert ui.poll() is None
    finally:
        ui.terminate()
        ui.wait(10)


def gate_row(driver: Any, gate: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(`[data-gate='${arguments[0]}']`);"
        "return e ? e.closest('tr').innerText : '';", gate))


def test_change_page_shows_blockers_verdicts_who_approved_and_the_revert(
        cluster: Cluster, browser: Any) -> None:
    """A real sweep of a gated change (real `coord worker`, real git): while the gate
    waits, the page lists it as the blocker and the verify todo as passed; after `coord
    approve` the gate reads approved by its approver and nothing blocks; after `coord
    change land` and `coord change revert`, every repo reads reverted with the revert
    SHA the remote has, without a reload."""
    from tests.integration.change_repos import catalog_yaml, make_repos

    names, gate = ["core", "api"], "TODO-200"
    repos = make_repos(cluster.root, names)
    text = catalog_yaml(names).replace("  dependencies:", (
        f"    - {{id: {gate}, task: ship it, repo: api, plan: PLAN-001, gate: {{approvals: 1}}, "
        "blocked_by: [TODO-102]}\n  dependencies:"))
    cluster.eco.write_text(text)
    ui, base = serve_ui(cluster)
    browser.get(f"{base}/changes/PLAN-001")
    # nothing swept yet: each repo has no candidate, and the page says so
    wait_until(lambda: {"core", "api"} <= set(blocker_ids(browser)), 15, "the repos as blockers")
    assert attr(browser, "#landable", "data-landable") == "false"

    cluster.start_worker("core", extra=("--repo", "api"))
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, gate, {"awaiting_approval"}, timeout=60)
    wait_until(lambda: blocker_ids(browser) == {gate: "gate"}, 15, "the waiting gate as the blocker")
    assert attr(browser, '[data-verify="TODO-102"]', "data-verdict") == "passed"
    assert attr(browser, f'[data-gate="{gate}"]', "data-verdict") != "approved"
    assert "nobody" in gate_row(browser, gate)
    browser.execute_script("window.__notReloaded = 'marker';")

    approved = cluster.cli("approve", gate, "--sweep", sid, "--comment", "ok")
    assert approved.returncode == 0, approved.stderr
    assert cluster.wait_sweep(sid)["status"] == "succeeded"
    who = cluster.rt.checkpoints.get(sid, gate)["approvals"]
    wait_until(lambda: attr(browser, f'[data-gate="{gate}"]', "data-verdict") == "approved", 15,
               "the gate approved on the page")
    assert who and all(str(p) in gate_row(browser, gate) for p in who), (who, gate_row(browser, gate))
    wait_until(lambda: attr(browser, "#landable", "data-landable") == "true", 15, "landable")
    assert attr(browser, "#blockers", "class") == "muted"

    landed = cluster.cli_json("change", "land", "PLAN-001")
    assert landed["state"] == "landed", landed
    reverted = cluster.cli_json("change", "revert", "PLAN-001")
    assert reverted["state"] == "reverted", reverted
    wait_until(lambda: repo_states(browser) == dict.fromkeys(names, "reverted"), 15,
               "every repo reverted on the page")
    wait_until(lambda: attr(browser, "#change-state", "data-change-state") == "reverted", 15,
               "the change reverted on the page")
    for name in names:  # the revert SHA the remote has; the landed one kept beside it
        head = repos.remote_head(name)
        assert attr(browser, f'[data-repo="{name}"] [data-sha="reverted"]', "title") == head
        assert attr(browser, f'[data-repo="{name}"] [data-sha="landed"]', "title") == \
            git(repos.remote(name), "rev-parse", "main^")
    assert browser.execute_script("return window.__notReloaded") == "marker", "reloaded"
    assert ui.poll() is None


def blocker_ids(driver: Any) -> dict[str, str]:
    return dict(driver.execute_script(
        "const o = {}; for (const e of document.querySelectorAll('[data-blocker]'))"
        " o[e.dataset.blocker] = e.dataset.kind; return o;"))


def test_the_page_says_interrupted_and_how_to_carry_it_on(tmp_path: Path, redis_url: str,
                                                          browser: Any) -> None:
    """A landing whose process was SIGKILLed half-way (its land command waiting in core)
    reads `interrupted` with the command that carries it on, on the change's page and in
    the overview's badge; once carried on, `landed` (without a reload) (#50)."""
    import signal

    held, go = tmp_path / "held", tmp_path / "go"
    command = (f'if [ "$COORD_CHANGE_REPO" = core ] && [ ! -f {go} ]; then touch {held}; '
               f"while [ ! -f {go} ]; do sleep 0.05; done; fi; "
               "git push -q origin HEAD:refs/heads/$COORD_CHANGE_BASE")
    w = World(tmp_path, NAMES, land="command", land_command=command)
    w.draft()
    w.verify()
    ui, base = serve(w.catalog)
    try:
        lander = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(w.catalog), "change",
             "land", w.plan], cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(held.exists, 30, "the landing to wait in core's land command")
        os.killpg(lander.pid, signal.SIGKILL)
        lander.wait(10)
        browser.get(f"{base}/changes/{w.plan}")
        wait_until(lambda: attr(browser, "#change-state", "data-change-state") == "interrupted",
                   15, "the change interrupted on the page")
        assert f"coord change land {w.plan}" in text_of(browser, "#change-resume")
        assert "its process ended" in text_of(browser, "#change-reason")
        browser.execute_script("window.__notReloaded = 'marker';")
        go.touch()
        assert coord(w.catalog, "change", "land", w.plan)["state"] == "landed"
        wait_until(lambda: attr(browser, "#change-state", "data-change-state") == "landed", 15,
                   "the change landed on the page")
        assert attr(browser, "#change-resume", "id") is None
        assert browser.execute_script("return window.__notReloaded") == "marker", "reloaded"
    finally:
        ui.terminate()
        ui.wait(10)


def test_a_rejected_gate_is_never_a_green_verified_badge(cluster: Cluster, browser: Any) -> None:
    """Every repo verified, the gate rejected: the change's badge reads `rejected` on its
    page, /changes and the overview (0.4: a green `verified`) (#50)."""
    from tests.integration.change_repos import catalog_yaml, make_repos

    names, gate = ["core", "api"], "TODO-200"
    make_repos(cluster.root, names)
    cluster.eco.write_text(catalog_yaml(names).replace("  dependencies:", (
        f"    - {{id: {gate}, task: ship it, repo: api, plan: PLAN-001, gate: {{approvals: 1}}, "
        "blocked_by: [TODO-102]}\n  dependencies:")))
    ui, base = serve_ui(cluster)
    cluster.start_worker("core", extra=("--repo", "api"))
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, gate, {"awaiting_approval"}, timeout=60)
    res = cluster.cli("reject", gate, "--sweep", sid, "--comment", "not today")
    assert res.returncode == 0, res.stderr
    cluster.wait_sweep(sid)
    browser.get(f"{base}/changes/PLAN-001")
    wait_until(lambda: attr(browser, "#change-state", "data-change-state") == "rejected", 15,
               "the change rejected on the page")
    assert repo_states(browser) == dict.fromkeys(names, "verified")
    assert f"gate {gate} was rejected" in text_of(browser, "#change-reason")
    for page in ("/changes", "/"):
        browser.get(base + page)
        wait_until(lambda: attr(browser, '[data-change="PLAN-001"]', "data-change-state")
                   == "rejected", 15, f"the change rejected on {page}")
    assert ui.poll() is None


def pull_row(driver: Any, repo: str) -> list[str]:
    """The cells of ``repo``'s row in the page's pull request table."""
    return [str(c) for c in driver.execute_script(
        "const s = document.querySelector(`#pulls [data-pr=\"${arguments[0]}\"]`);"
        "if (!s) return [];"
        "return [...s.closest('tr').children].map((c) => c.textContent);", repo)]


def test_the_pull_request_table_says_what_the_forge_says(tmp_path: Path, redis_url: str,
                                                         browser: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A change published as pull requests on the fake GitHub (real HTTP, every request
    and answer checked against GitHub's description; a ruleset asking two approvals and
    `ci`): `coord ui` asks the forge, and the page's table shows each repo's pull
    request, linked, with its approvals against the ruleset's count and who gave them,
    and why it would not merge; the forge token is nowhere on the page."""
    from coordination.settings import get_settings
    from tests.forges import FakeGitHub
    from tests.integration.forge_change import NAMES as PULL_NAMES
    from tests.integration.forge_change import PLAN, ForgeChange

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    get_settings.cache_clear()
    fake = FakeGitHub(tmp_path / "forge").start()
    proc = None
    try:
        fc = ForgeChange(fake, tmp_path / "w")
        fc.draft()
        fc.verify()
        for r in PULL_NAMES:
            fake.add_ruleset(f"acme/{r}", approvals=2, checks=["ci"])
        published = fc.coord_json("change", "publish", PLAN)
        assert [r["action"] for r in published["repos"]] == ["opened", "opened"], published
        fake.review("acme/libz", fc.pr("libz").number, "ana")
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(fc.catalog), "ui",
             "--port", str(port)], cwd=ROOT, env={**os.environ, **fc.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_serving(proc, base)
        browser.get(f"{base}/changes/{PLAN}")
        wait_until(lambda: all(pull_row(browser, r) for r in PULL_NAMES), 20,
                   "a pull request row for each repo")
        libz, api = pull_row(browser, "libz"), pull_row(browser, "api")
        # repo, pull request, state, approvals, checks, mergeable, why
        assert libz[0] == "libz" and libz[1] == f"#{fc.pr('libz').number}", libz
        assert libz[2] == "open" and libz[3] == "1/2 (ana)" and libz[5] == "no", libz
        assert api[3] == "0/2" and api[5] == "no", api
        assert "review" in api[6] and "ci" in api[6], api
        assert attr(browser, '#pulls [data-pr="libz"]', "data-pr-state") == "open"
        link = browser.execute_script(
            "const a = document.querySelector('#pulls tr:has([data-pr=\"libz\"]) a');"
            "return a ? a.href : null;")
        url = fc.rt.changes.read(PLAN).pulls["libz"].url
        assert url and url.startswith("http") and link == url, (link, url)
        assert fake.token not in browser.page_source
        assert proc.poll() is None
    finally:
        if proc is not None:
            stop_process(proc)
        fake.stop()
    assert fake.errors == [], "\n".join(fake.errors)
