"""/issues, /deps and /trends in a real headless Chromium, served by `coord ui` over a
real redis-server, after a real sweep run by real workers (its history is what /trends
draws). Skipped without chromium and chromedriver, as test_ui_browser.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.integration.browser import serve_ui
from tests.integration.helpers import PLAN, Cluster, T, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def test_issues_deps_and_trends_pages(cluster: Cluster, browser: Any) -> None:  # noqa: F811
    marker = cluster.root / "validation-ran"
    cluster.write_catalog({"lib": 1, "app": 1}, [
        T("TODO-001", "lib", "sleep 0.3; echo built"),
        T("TODO-002", "app", "echo deployed", blocked_by=["TODO-001"]),
    ])
    doc = yaml.safe_load(cluster.eco.read_text())
    doc["coordination"]["issues"] = [
        {"id": "ISSUE-001", "title": "Upgrade the shared client", "repos": ["lib", "app"],
         "status": "open"}]
    doc["coordination"]["todos"].append(
        {"id": "TODO-003", "task": "adopt the client", "repo": "app", "plan": PLAN,
         "run": "true", "blocked_by": ["ISSUE-001"]})
    doc["coordination"]["dependencies"] = [
        {"id": "DEP-001", "consumer": "app", "provider": "lib", "type": "build",
         "validation": {"command": f"touch {marker}"}},
        {"id": "DEP-002", "consumer": "lib", "provider": "app", "type": "peer"}]
    cluster.eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    cluster.start_workers(["lib", "app"])
    # The issue blocks TODO-003: the sweep runs the two others (it never waits on it).
    st = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--ignore-blockers", timeout=120)
    assert st["status"] in ("succeeded", "completed"), st

    ui, base = serve_ui(cluster)
    try:
        browser.get(base + "/issues")
        wait_until(lambda: js(browser, "return document.querySelectorAll('[data-issue]').length") == 1,
                   30, "the issues table")
        row = js(browser, "return document.querySelector('[data-issue]').closest('tr').innerText")
        assert "Upgrade the shared client" in row and "TODO-003" in row and PLAN in row, row

        browser.get(base + "/deps")
        wait_until(lambda: js(browser, "return document.querySelectorAll('path[data-dep]').length") == 2,
                   30, "the dependency graph")
        edges = js(browser, "return [...document.querySelectorAll('path[data-dep]')]"
                            ".map((p) => [p.dataset.dep, p.dataset.type, p.getAttribute('d').length > 0])")
        assert sorted(map(tuple, edges)) == [("DEP-001", "build", True), ("DEP-002", "peer", True)]
        repos = js(browser, "return [...document.querySelectorAll('.repo-node')].map((e) => "
                            "[e.dataset.repo, e.getBoundingClientRect().width > 0])")
        assert sorted(map(tuple, repos)) == [("app", True), ("lib", True)]
        labels = js(browser, "return [...document.querySelectorAll('text.dep-label')].map((t) => t.textContent)")
        assert sorted(labels) == ["build", "peer"]
        assert not marker.exists()  # the page read the graph; no validation command ran

        browser.get(base + "/trends")
        wait_until(lambda: js(browser, "return document.querySelectorAll('[data-repo]').length") == 2,
                   30, "the trends tables")
        text = browser.find_element("tag name", "main").text
        for heading in ("Success rate per repo", "Velocity", "Slowest", "Flakiest", "Bottlenecks"):
            assert heading in text, (heading, text)
        # app's TODO-002 waited on lib's TODO-001 (sleep 0.3): lib is the bottleneck row.
        bottleneck = js(browser, "const h = [...document.querySelectorAll('h3')].find((e) => "
                                 "e.textContent.startsWith('Bottlenecks'));"
                                 "return h.nextElementSibling.querySelector('tbody tr').innerText")
        assert bottleneck.split()[0] == "lib", bottleneck
        # (the page names its icon inline, so the browser asks the server for no favicon)
        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert errors == [], errors
    finally:
        ui.terminate()
        ui.wait(timeout=10)
