"""A real headless Chromium over `coord ui`: finding the browser and its driver, serving
the web view of a cluster, reading the page, and the docs' screenshots (docs/images/,
each with its sidecar)."""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.docs.screenshots import write_sidecar
from tests.integration.helpers import ROOT, Cluster, wait_serving
from tests.servers import free_port

#: Where the docs' screenshots go: COORD_SCREENSHOTS=DIR (relative to the repository;
#: `make screenshots` sets docs/images, to take the committed ones again), else
#: .artifacts/screenshots/ (ignored by git: a test run leaves the tree clean). Their size.
DOCS_IMAGES = ROOT / (os.environ.get("COORD_SCREENSHOTS") or ".artifacts/screenshots")
SHOT_SIZE = (1280, 800)


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    why = "chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)"
    if os.environ.get("COORD_REQUIRE_REDIS") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def doc_screenshot(driver: Any, name: str) -> Path:
    """The page as the docs show it: ``DOCS_IMAGES/NAME.png``, 1280x800 CSS pixels at
    scale 1 whatever the window (the page is laid out again at that size first), and its
    sidecar ``NAME.json`` (tests/docs/screenshots.py)."""
    width, height = SHOT_SIZE
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("return new Promise(r => requestAnimationFrame(() => "
                              "requestAnimationFrame(r)))")  # laid out and painted
        png = driver.get_screenshot_as_png()
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == SHOT_SIZE, struct.unpack(">II", png[16:24])
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    path = DOCS_IMAGES / f"{name}.png"
    path.write_bytes(png)
    write_sidecar(path)  # what it was taken of: tests/unit/test_docs_images.py compares
    return path


def page_state(driver: Any, n: int = 3000) -> str:
    """What the page showed and its console said, for a failed test's report: its URL,
    the text of its main part and of its detail panel (their last ``n`` characters),
    the panel's HTML, and every console entry. Never raises (a browser that died says so)."""
    try:
        shown = driver.execute_script(
            "const t = (s) => { const e = document.querySelector(s); return e ? e.innerText : null; };"
            "const d = document.querySelector('#detail');"
            "return {main: t('#main'), detail: t('#detail'), detail_html: d ? d.outerHTML : null,"
            " steer: t('#steer'), status: t('#sweep-status')};")
        console = "\n".join(f"{e.get('level')} {e.get('message')}"
                             for e in driver.get_log("browser"))
    except Exception as exc:  # noqa: BLE001 - a report of a failure must not fail itself
        return f"===== the page: not readable ({exc!r}) ====="
    parts = [f"===== the page: {driver.current_url} ====="]
    for name in ("status", "steer", "main", "detail", "detail_html"):
        parts.append(f"--- {name} ---\n{str(shown.get(name))[-n:]}")
    parts.append(f"--- console ---\n{console or '(nothing)'}")
    return "\n".join(parts)


def statuses(driver: Any) -> dict[str, str]:
    return dict(driver.execute_script(
        "const o = {}; for (const e of document.querySelectorAll('[data-todo]'))"
        " o[e.dataset.todo] = e.dataset.status; return o;"))


def serve_ui(cluster: Cluster, auth: str | None = None) -> tuple[subprocess.Popen[Any], str]:
    """`coord ui` on a free port, once it answers; its process and base URL. ``auth``:
    COORD_UI_AUTH (user:password)."""
    port = free_port()
    ui = cluster.popen("ui", "--port", str(port), env={"COORD_UI_AUTH": auth} if auth else None,
                       log=f"ui-{port}.log")
    base = f"http://127.0.0.1:{port}"

    wait_serving(ui, base, basic(auth) if auth else None)
    return ui, base


def basic(auth: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def css(driver: Any, selector: str, prop: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? getComputedStyle(e).getPropertyValue(arguments[1]) : null;", selector, prop))


def text_of(driver: Any, selector: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector))
