"""The web view's actions and logs in a real headless Chromium, on a sweep run by a real
worker: a signed-in user pauses and resumes the sweep with the page's buttons, follows a
running todo's log as it is written, and retries the todo that failed; each is in the
audit log as that user, via web. And no edge of either graph passes under a box, read
from the drawn SVG itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.browser import basic, serve_ui, statuses, text_of
from tests.integration.helpers import Cluster, T, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

AUTH = "dee:pa55 word"

#: Points along every path matched by ``arguments[0]`` inside boxes matched by
#: ``arguments[1]`` (both in the same positioned wrapper): what an edge hides under.
HIDDEN = """
const boxes = [...document.querySelectorAll(arguments[1])].map((b) => ({id: b.dataset.todo || b.dataset.repo,
  x: b.offsetLeft, y: b.offsetTop, w: b.offsetWidth, h: b.offsetHeight}));
const out = [];
for (const p of document.querySelectorAll(arguments[0])) {
  const total = p.getTotalLength();
  for (let s = 0; s <= total; s += 2) {
    const q = p.getPointAtLength(s);
    for (const b of boxes)
      if (q.x > b.x + 1 && q.x < b.x + b.w - 1 && q.y > b.y + 1 && q.y < b.y + b.h - 1)
        out.push([b.id, Math.round(q.x), Math.round(q.y)]);
  }
}
return out;
"""


def click(browser: Any, selector: str) -> None:
    browser.execute_script("document.querySelector(arguments[0]).click();", selector)


def test_pause_resume_follow_a_log_and_retry_from_the_browser(cluster: Cluster,
                                                               browser: Any) -> None:
    c = cluster
    gate, fixed = c.repo_dir("a") / "gate", c.repo_dir("a") / "fixed"
    c.write_catalog({"a": 2}, [
        T("TODO-001", "a", "echo first-line; while [ ! -f gate ]; do sleep 0.05; done; "
                           "echo second-line"),
        T("TODO-002", "a", "test -f fixed || { echo broken >&2; exit 3; }"),
        T("TODO-003", "a", "true", blocked_by=["TODO-001"]),
        T("TODO-004", "a", "true", blocked_by=["TODO-001", "TODO-003"]),  # skips a level
    ])
    c.start_worker("a")
    ui, base = serve_ui(c, AUTH)
    sid = c.start_sweep()
    c.wait_todo(sid, "TODO-001", {"running"}, timeout=60)
    c.wait_todo(sid, "TODO-002", {"failed"}, timeout=60)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": basic(AUTH)})
    browser.get(f"{base}/sweeps/{sid}")
    wait_until(lambda: len(statuses(browser)) == 4, 20, "the sweep's todos on the page")
    # TODO-001 -> TODO-004 skips TODO-003's level: drawn beside it, not under it.
    assert browser.execute_script(HIDDEN, "svg.edges path", ".todo") == []

    # Pause, then resume, with the page's buttons.
    wait_until(lambda: browser.find_elements("css selector", '#steer [data-action="pause"]'),
               20, "the Pause button")
    click(browser, '#steer [data-action="pause"]')
    wait_until(lambda: text_of(browser, "#sweep-status") == "paused", 20, "the sweep paused")
    assert c.status(sid)["status"] == "paused"
    wait_until(lambda: browser.find_elements("css selector", '#steer [data-action="resume"]'),
               20, "the Resume button")
    click(browser, '#steer [data-action="resume"]')
    wait_until(lambda: text_of(browser, "#sweep-status") == "running", 20, "the sweep resumed")

    # The running todo's log, followed as it is written.
    click(browser, '[data-todo="TODO-001"]')
    log = "#detail pre.log"
    wait_until(lambda: text_of(browser, log) == "first-line\n", 20, "the running todo's log")
    assert browser.execute_script(
        "return document.querySelector(arguments[0]).dataset.running", log) == "true"
    gate.write_text("")
    wait_until(lambda: "second-line" in text_of(browser, log), 30, "the log's next line")
    assert browser.execute_script("return window.coord.logChunks || 0") >= 1  # streamed
    wait_until(lambda: text_of(browser, "#sweep-status") == "failed", 60, "the sweep's end")

    # Retry the failed todo: its attempts and output are in its panel first.
    click(browser, '[data-todo="TODO-002"]')
    wait_until(lambda: "broken" in text_of(browser, log), 20, "the failed todo's log")
    assert "exit 3" in text_of(browser, "#logs .attempts")
    fixed.write_text("")
    wait_until(lambda: browser.find_elements("css selector", '#detail [data-action="retry"]'),
               20, "the Retry button")
    click(browser, '#detail [data-action="retry"]')
    wait_until(lambda: text_of(browser, "#sweep-status") == "succeeded", 60,
               "the retried sweep's end on the page")
    assert browser.execute_script(  # (the open panel carries data-todo too: the graph's)
        "return document.querySelector('.graph [data-todo=\"TODO-002\"]').dataset.status"
    ) == "succeeded"
    assert [a["exit_code"] for a in c.cli_json("logs", "TODO-002")["attempts"]] == [3, 0]
    audit = json.loads(c.cli("audit", "--json").stdout)
    entries = audit["entries"] if isinstance(audit, dict) else audit
    assert [(e["who"], e["op"], e["decision"].get("via")) for e in entries
            if str(e["op"]).startswith("sweep.")] == [
        ("dee", "sweep.pause", "web"), ("dee", "sweep.unpause", "web"),
        ("dee", "sweep.resume", "web")]
    assert ui.poll() is None


DEPS = """version: 1
repos:
  - {name: libcore, path: repos/libcore}
  - {name: api, path: repos/api}
  - {name: jobs, path: repos/jobs}
  - {name: web, path: repos/web}
  - {name: infra, path: repos/infra}
coordination:
  dependencies:
    - {id: DEP-001, consumer: api, provider: libcore, type: runtime}
    - {id: DEP-002, consumer: jobs, provider: libcore, type: runtime}
    - {id: DEP-003, consumer: web, provider: api, type: api}
    - {id: DEP-004, consumer: web, provider: libcore, type: runtime}
    - {id: DEP-005, consumer: infra, provider: web, type: dev}
    - {id: DEP-006, consumer: libcore, provider: infra, type: peer}
"""


def test_no_dependency_edge_nor_label_hides_under_a_repo(cluster: Cluster, browser: Any) -> None:
    """The example catalog's graph (0.5 drew web in the first column, its arrow from api
    down through the boxes above it), with a dependency skipping api's column and a
    cycle closed by a peer edge."""
    cluster.eco.write_text(DEPS)
    ui, base = serve_ui(cluster)
    browser.get(f"{base}/deps")
    wait_until(lambda: len(browser.find_elements("css selector", "path.dep-edge")) == 6, 20,
               "the dependency graph")
    assert browser.execute_script(HIDDEN, "path.dep-edge", ".repo-node") == []
    left = dict(browser.execute_script(
        "const o = {}; for (const n of document.querySelectorAll('.repo-node'))"
        " o[n.dataset.repo] = n.offsetLeft; return o;"))
    assert left["libcore"] < left["api"] < left["web"], left
    labels_under = browser.execute_script("""
      const boxes = [...document.querySelectorAll('.repo-node')].map((b) => b.getBoundingClientRect());
      return [...document.querySelectorAll('text.dep-label')].filter((t) => {
        const r = t.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
        return boxes.some((b) => x > b.left && x < b.right && y > b.top && y < b.bottom);
      }).map((t) => t.textContent);""")
    assert labels_under == []
    assert ui.poll() is None
