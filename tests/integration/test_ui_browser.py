"""The web view in a real headless Chromium, on a real sweep run by a real worker.

`coord ui` serves the page; the test watches each todo's element change status
in place (no reload) as the worker runs them, opens a failed todo's output, and
saves a screenshot. Skipped without chromium and chromedriver, unless
COORD_REQUIRE_REDIS=1 (CI installs them), where their absence is a failure.

The docs' screenshots of the web view (docs/images/web-view-*.png) are taken here and in
test_ui_change_browser.py, at the moment each shows (browser.py's :func:`doc_screenshot`),
so they show the web view as it is. A plain run writes them to .artifacts/screenshots/;
`make screenshots` writes them over docs/images/: commit them, and their sidecars, when
they change (tests/unit/test_docs_images.py fails when the web view's look changed since).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import basic, css, doc_screenshot, serve_ui, statuses, text_of
from tests.integration.helpers import PLAN, ROOT, Cluster, T, wait_until, write_api_catalog
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ARTIFACTS = ROOT / ".artifacts" / "ui"
TODOS = ("TODO-001", "TODO-002", "TODO-003", "TODO-004")


def test_sweep_page_follows_a_live_sweep(cluster: Cluster, browser: Any) -> None:
    gate = cluster.root / "gate"
    wait = f"while [ ! -f {gate} ]; do sleep 0.05; done"
    cluster.write_catalog({"a": 2}, [
        T("TODO-001", "a", f"{wait}; echo one"),
        T("TODO-003", "a", f"{wait}; echo three"),
        T("TODO-002", "a", "echo kaput-output; exit 4", blocked_by=["TODO-001"]),
        T("TODO-004", "a", "true", blocked_by=["TODO-002"]),
    ])
    cluster.start_worker("a")
    ui, base = serve_ui(cluster)
    sid = cluster.start_sweep()
    start = time.monotonic()
    browser.get(f"{base}/sweeps/{sid}")
    wait_until(lambda: set(statuses(browser)) == set(TODOS), 15, "every todo on the page")
    render_s = time.monotonic() - start
    browser.execute_script(
        "window.__notReloaded = 'marker'; window.__changes = [];"
        "new MutationObserver((ms) => { for (const m of ms) window.__changes.push("
        " [m.target.dataset.todo, m.target.dataset.status, performance.timeOrigin + performance.now()]);"
        "}).observe(document.querySelector('.graph'), {attributes: true, subtree: true,"
        " attributeFilter: ['data-status']});")

    wait_until(lambda: statuses(browser)["TODO-001"] == "running", 30, "TODO-001 running")
    assert statuses(browser)["TODO-002"] in ("pending", "queued")
    wait_until(lambda: statuses(browser)["TODO-003"] == "running", 30, "TODO-003 running")
    doc_screenshot(browser, "web-view-sweep")  # a sweep running: two todos, two waiting
    gate.touch()
    final = {"TODO-001": "succeeded", "TODO-003": "succeeded", "TODO-002": "failed",
             "TODO-004": "skipped"}
    wait_until(lambda: statuses(browser) == final, 45, f"statuses {final} on the page")
    wait_until(lambda: browser.execute_script(
        "return document.getElementById('sweep-status').dataset.status") == "failed", 15,
        "the sweep's status on the page")
    assert browser.execute_script("return window.__notReloaded") == "marker", "the page reloaded"
    changes = browser.execute_script("return window.__changes")
    assert ["TODO-001", "succeeded"] in [c[:2] for c in changes]

    # Event emitted (ledger time) -> element changed (browser time), same machine clock.
    ledger = {(e["todo_id"], e["kind"].split(".", 1)[1]): e["ts"]
              for e in cluster.events(sid) if e.get("todo_id")}
    lat = sorted(c[2] / 1000 - ledger[(c[0], c[1])] for c in changes
                 if (c[0], c[1]) in ledger)
    assert lat and max(lat) < 5.0, lat
    print(f"\nui: page with all todos {render_s * 1000:.0f} ms; event -> data-status "
          f"p50 {lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms ({len(lat)} changes)")

    browser.find_element("css selector", '[data-todo="TODO-002"]').click()
    wait_until(lambda: "kaput-output" in browser.execute_script(
        "const a = document.getElementById('detail');"
        "return a.hidden ? '' : (a.querySelector('pre.tail') || {}).textContent || '';"),
        15, "TODO-002's output tail in the detail panel")
    detail = browser.find_element("id", "detail").text
    assert "exit code" in detail and "4" in detail and "attempts" in detail

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "sweep.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000

    browser.get(f"{base}/")
    wait_until(lambda: sid in browser.find_element("tag name", "main").text, 15,
               "the sweep listed on /")
    browser.get(f"{base}/plans/{PLAN}")
    wait_until(lambda: len(statuses(browser)) == 4, 15, "the plan's todos on /plans")
    assert ui.poll() is None


def test_a_rolled_back_sweep_does_not_look_like_a_success(cluster: Cluster, browser: Any) -> None:
    """An --atomic sweep whose last todo fails rolls the first two back: on the page their
    colours are not a success's (nor the failure's), progress counts the undos apart, the
    reason names the failed todo, and a todo's details show its change and its undo."""
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", "echo change-one", undo="echo undo-one"),
        T("TODO-002", "a", "echo change-two", blocked_by=["TODO-001"], undo="echo undo-two"),
        T("TODO-003", "a", "echo kaput-output; exit 4", blocked_by=["TODO-002"],
          undo="echo never"),
    ])
    cluster.start_worker("a")
    ui, base = serve_ui(cluster)
    sid = str(cluster.cli_json("plan", "sweep", PLAN, "--atomic")["sweep_id"])
    assert cluster.wait_ended(sid, 60)["status"] == "rolled_back"

    browser.get(f"{base}/sweeps/{sid}")
    final = {"TODO-001": "compensated", "TODO-002": "compensated", "TODO-003": "failed"}
    wait_until(lambda: statuses(browser) == final, 15, f"statuses {final} on the page")
    wait_until(lambda: text_of(browser, "#sweep-status") == "rolled_back", 15, "the sweep badge")

    # Colours: undone is neither done nor failed; the legend carries every status.
    bg = "background-color"
    succeeded = css(browser, '.legend [data-status="succeeded"]', bg)
    failed = css(browser, '.legend [data-status="failed"]', bg)
    compensated = css(browser, '[data-todo="TODO-001"]', bg)
    undo_failed = css(browser, '.legend [data-status="compensation_failed"]', bg)
    rolled_back = css(browser, "#sweep-status", bg)
    assert succeeded and failed and compensated and undo_failed and rolled_back
    assert compensated == css(browser, '.legend [data-status="compensated"]', bg)
    assert len({succeeded, failed, compensated, undo_failed}) == 4, (
        succeeded, failed, compensated, undo_failed)
    assert rolled_back not in (succeeded, failed), rolled_back
    assert css(browser, '[data-todo="TODO-001"]', "border-top-style") == "dashed"
    assert css(browser, '[data-todo="TODO-003"]', bg) == failed

    # Progress counts the undos apart; the reason names the todo that failed.
    progress = text_of(browser, "#sweep-progress")
    assert "3/3" in progress and "2 undone" in progress, progress
    wait_until(lambda: "TODO-003" in text_of(browser, "#sweep-reason"), 15,
               "the rollback's trigger on the page")
    # (read in one script: the head is drawn again on news, such as the stream's end, so
    # an element found by one call may be gone by the next)
    assert browser.execute_script(
        "const e = document.getElementById('sweep-reason');"
        "return !!e && e.getClientRects().length > 0"
        " && getComputedStyle(e).visibility !== 'hidden';")
    assert css(browser, "#sweep-reason", bg) == rolled_back

    # A rolled-back todo: its change and its undo, each with its own output.
    browser.find_element("css selector", '[data-todo="TODO-002"]').click()
    wait_until(lambda: "undo-two" in text_of(browser, '#detail [data-part="undo"] pre.tail'),
               15, "the undo's output in the detail panel")
    assert "change-two" in text_of(browser, '#detail [data-part="change"] pre.tail')
    assert "undo-two" not in text_of(browser, '#detail [data-part="change"]')
    assert "change-two" not in text_of(browser, '#detail [data-part="undo"] pre.tail')
    assert text_of(browser, '#detail [data-part="change"] .tail-title') == \
        "the change's output tail"
    assert text_of(browser, '#detail [data-part="undo"] .tail-title') == "the undo's output tail"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "rolled_back.png"))

    # The list of sweeps: 3/3, and the undos beside it.
    browser.get(f"{base}/")
    row = f'.progress[data-sweep="{sid}"]'
    wait_until(lambda: "2 undone" in text_of(browser, row), 15, "the undos counted on /")
    assert "3/3" in text_of(browser, row)
    assert css(browser, f'{row} .undone', bg) == compensated
    assert ui.poll() is None


GATED = """version: 1
repos:
  - {name: a, path: repos/a, concurrency: 2}
coordination:
  plans:
    - {id: PLAN-001, title: gated, status: active, waves: [{name: only, repos: [a]}]}
  todos:
    - {id: TODO-001, task: build, repo: a, plan: PLAN-001, run: "true"}
    - {id: TODO-002, task: prod approval, repo: a, plan: PLAN-001, gate: {approvals: 1},
       blocked_by: [TODO-001]}
    - {id: TODO-003, task: db approval, repo: a, plan: PLAN-001, gate: {approvals: 1},
       blocked_by: [TODO-001]}
    - {id: TODO-004, task: deploy, repo: a, plan: PLAN-001, run: "touch deployed",
       blocked_by: [TODO-002]}
    - {id: TODO-005, task: migrate, repo: a, plan: PLAN-001, run: "touch migrated",
       blocked_by: [TODO-003]}
"""


def test_approve_and_reject_gates_from_the_browser(cluster: Cluster, browser: Any) -> None:
    """A signed-in user approves one waiting gate and rejects another with the page's
    buttons (a POST carrying the page's CSRF token); a POST without the token, or
    without a user, is refused and changes nothing. The page lists the plan's wave."""
    cluster.repo_dir("a").mkdir(parents=True, exist_ok=True)
    cluster.eco.write_text(GATED)
    cluster.start_worker("a")
    auth = "cy:s3cret pass"
    ui, base = serve_ui(cluster, auth)
    sid = cluster.start_sweep()
    for g in ("TODO-002", "TODO-003"):
        cluster.wait_todo(sid, g, {"awaiting_approval"})

    # Forged requests: no token, or no user at all.
    url = f"{base}/api/sweeps/{sid}/todos/TODO-002/approve"
    for headers, code in (({**basic(auth), "Content-Type": "application/json"}, 403), ({}, 401)):
        req = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == code
    assert cluster.checkpoint(sid, "TODO-002")["status"] == "awaiting_approval"

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": basic(auth)})
    browser.get(f"{base}/sweeps/{sid}")
    gate = '#gates [data-gate="{}"]'.format
    wait_until(lambda: browser.execute_script(
        "return document.querySelectorAll('#gates [data-action]').length") == 4,
        20, "the gates' buttons on the page")
    assert "Approve as cy" in text_of(browser, gate("TODO-002"))
    assert statuses(browser)["TODO-002"] == "awaiting_approval"
    browser.execute_script("document.getElementById('gates').scrollIntoView()")
    doc_screenshot(browser, "web-view-gate")  # two gates awaiting approval, their buttons
    browser.execute_script("window.scrollTo(0, 0)")
    # (the head is drawn again on news: elements are read and clicked by script, at once)
    wave_state = ("const w = document.querySelector('#waves [data-wave=\"only\"]');"
                  "return w ? w.dataset.state : null;")
    assert browser.execute_script(wave_state) == "running"
    assert "1/5 succeeded" in text_of(browser, '#waves [data-wave="only"]')

    browser.execute_script(
        "const g = document.querySelector(arguments[0]);"
        "g.querySelector('input.comment').value = 'lgtm';"
        "g.querySelector('[data-action=\"approve\"]').click();", gate("TODO-002"))
    wait_until(lambda: "approved by cy" in text_of(browser, gate("TODO-002")), 20,
               "the approval on the page")
    browser.execute_script("document.querySelector(arguments[0]).click();",
                           gate("TODO-003") + ' [data-action="reject"]')
    wait_until(lambda: "rejected by cy" in text_of(browser, gate("TODO-003")), 20,
               "the rejection on the page")
    wait_until(lambda: text_of(browser, "#sweep-status") == "failed", 30, "the sweep's end")
    assert statuses(browser) == {"TODO-001": "succeeded", "TODO-002": "succeeded",
                                 "TODO-003": "failed", "TODO-004": "succeeded",
                                 "TODO-005": "skipped"}
    assert not browser.find_elements("css selector", "#gates [data-action]")  # none waits
    wait_until(lambda: browser.execute_script(wave_state) == "halted", 15,  # (3 of 5 succeeded)
               "the wave's end on the page")
    # The page of the sweep once it ended, opened afresh: its wave is still listed.
    browser.get(f"{base}/sweeps/{sid}")
    wait_until(lambda: browser.execute_script(wave_state) == "halted", 15,
               "the finished sweep's wave on a fresh page")
    assert "3/5 succeeded" in text_of(browser, '#waves [data-wave="only"]')
    decided = {(e["kind"], e["todo_id"], e["by"], e.get("comment"))
               for e in cluster.events(sid) if e["kind"] in ("gate.approved", "gate.rejected")}
    assert decided == {("gate.approved", "TODO-002", "cy", "lgtm"),
                       ("gate.rejected", "TODO-003", "cy", "")}
    audit = json.loads(cluster.cli("audit", "--json").stdout)
    entries = audit["entries"] if isinstance(audit, dict) else audit
    assert [(e["who"], e["op"]) for e in entries if e.get("decision")] == [
        ("cy", "approve"), ("cy", "reject")]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "gates.png"))
    assert ui.poll() is None


def gated_sweep_on_the_page(cluster: Cluster, browser: Any) -> tuple[subprocess.Popen[Any], str]:
    """The gated catalog's sweep, run by a worker, both its gates waiting, open on a
    page that shows both: `coord ui`'s process and the sweep's id."""
    cluster.repo_dir("a").mkdir(parents=True, exist_ok=True)
    cluster.eco.write_text(GATED)
    cluster.start_worker("a")
    ui, base = serve_ui(cluster)
    sid = cluster.start_sweep()
    for g in ("TODO-002", "TODO-003"):
        cluster.wait_todo(sid, g, {"awaiting_approval"})
    browser.get(f"{base}/sweeps/{sid}")
    wait_until(lambda: browser.execute_script(
        "return document.querySelectorAll('#gates [data-gate]').length") == 2,
        20, "the two waiting gates on the page")
    return ui, sid


def decide_as_bo(cluster: Cluster, sid: str, verb: str, gate: str) -> None:
    """`coord approve|reject GATE --sweep SID` as bo (not the sweep's starter)."""
    res = subprocess.run(cluster.argv(verb, gate, "--sweep", sid), cwd=ROOT,
                         env=dict(cluster.env, COORD_USER="bo"), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# Every read of the sweep's head is made at once and answered at once, but the first one
# after this is armed is handed back only once the test releases it (window.__release()).
HOLD_NEXT_GRAPH_READ = """
window.__held = [];
window.__release = () => { for (const go of window.__held.splice(0)) go(); };
const realFetch = window.fetch;
let hold = 1;
window.fetch = async (url, opts) => {
  const r = await realFetch(url, opts);
  if (String(url).endsWith('/graph') && hold > 0) {
    hold--;
    await new Promise((go) => window.__held.push(go));
  }
  return r;
};
"""


def test_an_older_read_is_never_drawn_over_a_newer_one(cluster: Cluster, browser: Any) -> None:
    """Two reads of the sweep's head out at once may come back in either order. Here the
    read made after the first gate's approval is answered last, after the sweep ended
    and the page read its end: the page still ends showing the end (the wave halted, no
    gate waiting), not the state that read saw."""
    ui, sid = gated_sweep_on_the_page(cluster, browser)
    browser.execute_script(HOLD_NEXT_GRAPH_READ)

    decide_as_bo(cluster, sid, "approve", "TODO-002")  # its news makes the page read its head: held
    wait_until(lambda: browser.execute_script("return window.__held.length") == 1, 20,
               "the page's read after the approval")
    decide_as_bo(cluster, sid, "reject", "TODO-003")
    wait_until(lambda: cluster.status(sid)["status"] == "failed", 30, "the sweep's end")
    wait_until(lambda: text_of(browser, "#sweep-status") == "failed", 20,
               "the sweep's end reaching the page")
    heads = browser.execute_script("return coord.heads")
    browser.execute_script("window.__release()")
    wait_until(lambda: browser.execute_script(
        "return coord.ended === true && coord.heads > arguments[0]", heads), 20,
        "the held read drawn")
    wave_state = ("const w = document.querySelector('#waves [data-wave=\"only\"]');"
                  "return w ? w.dataset.state : null;")
    assert browser.execute_script(wave_state) == "halted"
    assert text_of(browser, "#sweep-status") == "failed"
    gates = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#gates [data-gate]')]"
        ".map((g) => [g.dataset.gate, g.dataset.status]))")
    assert gates == {"TODO-002": "succeeded", "TODO-003": "failed"}
    assert statuses(browser)["TODO-003"] == "failed"
    assert ui.poll() is None


# The next three reads of the sweep's head fail as a busy server's would (a 503).
FAIL_NEXT_GRAPH_READS = """
const realFetch = window.fetch;
window.__failed = 0;
window.fetch = async (url, opts) => {
  if (String(url).endsWith('/graph') && window.__failed < 3) {
    window.__failed++;
    return new Response(JSON.stringify({error: 'busy'}), {status: 503});
  }
  return realFetch(url, opts);
};
"""


def test_a_failed_read_of_the_head_is_made_again(cluster: Cluster, browser: Any) -> None:
    """A read of the sweep's head that fails (a server busy for a moment) is made again
    a little later: the page shows the approval its news announced, though the first
    reads after it failed."""
    ui, sid = gated_sweep_on_the_page(cluster, browser)
    gate = '#gates [data-gate="{}"]'.format
    browser.execute_script(FAIL_NEXT_GRAPH_READS)
    decide_as_bo(cluster, sid, "approve", "TODO-002")
    wait_until(lambda: "approved by bo" in text_of(browser, gate("TODO-002")), 20,
               "the approval on the page")
    assert browser.execute_script("return window.__failed") == 3
    assert ui.poll() is None


FLEET = """version: 1
repos:
  - {name: api, path: repos/api, tags: [python]}
  - {name: web, path: repos/web, tags: [node]}
  - {name: jobs, path: repos/jobs, tags: [python]}
  - {name: legacy, path: repos/legacy, tags: [python]}
coordination:
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
"""


def test_the_overview_filters_repos_by_a_selector(cluster: Cluster, browser: Any) -> None:
    """The repos of the overview filtered as `coord repo list --repos` selects: from the
    page's URL, then typed into its box (kept in the URL); a selector that selects
    nothing is said, and the repos shown unfiltered."""
    from selenium.webdriver.common.by import By

    cluster.eco.write_text(FLEET)
    ui, base = serve_ui(cluster)
    try:
        def shown() -> list[str]:
            return list(browser.execute_script(
                "return [...document.querySelectorAll('[data-repo-row]')]"
                ".map((e) => e.dataset.repoRow);"))

        browser.get(base + "/?repos=" + urllib.request.quote("tag:python,!legacy"))
        wait_until(lambda: shown() == ["api", "jobs"], 20, "the URL's selection")
        box = browser.find_element(By.ID, "repo-filter")
        assert box.get_attribute("value") == "tag:python,!legacy"
        box.clear()
        box.send_keys("...api")
        box.submit()
        wait_until(lambda: sorted(shown()) == ["api", "web"], 20, "the typed selection")
        assert "repos=...api" in urllib.request.unquote(browser.current_url)
        box = browser.find_element(By.ID, "repo-filter")
        box.clear()
        box.send_keys("wbe")
        box.submit()
        wait_until(lambda: browser.execute_script(
            "const e = document.getElementById('repo-filter-error'); return e && e.textContent;"),
            20, "the selector's error")
        said = browser.find_element(By.ID, "repo-filter-error").text
        assert "'wbe' matches no repo" in said, said
        assert sorted(shown()) == ["api", "jobs", "legacy", "web"]
    finally:
        ui.terminate()
        ui.wait(timeout=10)


ORPHAN = """  plans:
    - {id: PLAN-001, title: orphaned, status: active}
  todos:
    - {id: TODO-001, task: wait, repo: api, plan: PLAN-001,
       run: "while [ ! -e GATE ]; do sleep 0.05; done"}
"""


def test_an_orphaned_embedded_sweep_says_so_on_the_page(tmp_path: Path, browser: Any) -> None:
    """An embedded sweep whose CLI was SIGKILLed: the list of sweeps on / and the sweep's
    page say "orphaned: its process ended (pid N on HOST)" (0.4.0: running, its
    duration growing), as `sweep status` does; `coord ui` runs embedded over the same
    catalog."""
    gate = tmp_path / "go"
    eco = write_api_catalog(tmp_path, (), ORPHAN.replace("GATE", str(gate)))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COORD_")},
           "PYTHONPATH": str(ROOT)}

    def coord(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), *args],
            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def listed() -> str | None:
        out, _err = coord("sweep", "list", "--json").communicate(timeout=60)
        rows = json.loads(out or "[]")
        return str(rows[0]["sweep_id"]) if rows and rows[0]["status"] == "running" else None

    sweep = coord("plan", "sweep", PLAN, "--json")
    ui: subprocess.Popen[str] | None = None
    try:
        sid = str(wait_until(listed, 60, "the embedded sweep running"))
        sweep.kill()  # SIGKILL: nothing of it ends the sweep
        sweep.communicate(timeout=30)
        port = free_port()
        ui = coord("ui", "--port", str(port))
        base = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            assert ui is not None and ui.poll() is None, ui and ui.communicate()
            try:
                return urllib.request.urlopen(base + "/api/sweeps", timeout=2).status == 200
            except OSError:
                return False

        wait_until(serving, 30, "coord ui to serve", interval=0.1)
        want = f"orphaned: its process ended (pid {sweep.pid} on {socket.gethostname()})"
        browser.get(f"{base}/")
        row = f'[data-orphaned="{sid}"]'
        wait_until(lambda: text_of(browser, row) == want, 15, "the orphan on /")
        assert browser.find_element("css selector", row).get_attribute("data-status") == \
            "orphaned"
        browser.get(f"{base}/sweeps/{sid}")
        wait_until(lambda: text_of(browser, "#sweep-status") == want, 15, "the sweep badge")
        assert f"coord sweep resume {sid} adopts it" in text_of(browser, "#sweep-orphaned")
    finally:
        gate.touch()  # the killed sweep's command (if its worker outlived it) ends
        for proc in (sweep, ui):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)


CHECKED = """  plans:
    - {id: PLAN-001, title: checked, status: active, completion_criteria: [
        "said, never checked", {text: the release notes exist, check: "test -f NOTES"}]}
  todos:
    - {id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "true"}
"""


def test_the_plan_page_shows_its_criteria_checks(cluster: Cluster, browser: Any) -> None:
    """A plan's checked criterion shows its last result (`plan status --check`)."""
    write_api_catalog(cluster.root, (), CHECKED)
    assert cluster.cli("plan", "status", "PLAN-001", "--check").returncode == 1
    ui, base = serve_ui(cluster)
    try:
        def main() -> str:
            return str(browser.execute_script(
                "const m = document.getElementById('main'); return m ? m.textContent : '';"))

        browser.get(base + "/plans/PLAN-001")
        wait_until(lambda: "the release notes exist (check failed" in main(), 20,
                   "the failed check on the plan page")
        assert "said, never checked" in main()
        (cluster.root / "NOTES").touch()
        assert cluster.cli("plan", "status", "PLAN-001", "--check").returncode == 0
        browser.get(base + "/plans/PLAN-001")
        wait_until(lambda: "the release notes exist (check passed" in main(), 20,
                   "the passed check on the plan page")
    finally:
        ui.terminate()
        ui.wait(timeout=10)
