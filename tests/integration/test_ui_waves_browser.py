"""The web view of a finished waved sweep shows its waves (#50), in a real headless
Chromium: an embedded sweep of a plan with two waves, run to its end by `coord plan
sweep --wait` (its process gone), then `coord ui` started on the catalog and the sweep's
page opened: each wave listed, `done`, with its todos' count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import text_of
from tests.integration.helpers import ROOT, wait_serving, wait_until
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CATALOG = """\
version: 1
repos:
  - {name: api, path: api}
  - {name: web, path: web}
coordination:
  plans:
    - id: PLAN-001
      title: waved
      status: active
      waves:
        - {name: canary, repos: [api]}
        - {name: rest, repos: [web]}
  todos:
    - {id: TODO-001, task: a, repo: api, plan: PLAN-001, run: "true"}
    - {id: TODO-002, task: b, repo: web, plan: PLAN-001, run: "true"}
"""


def test_a_finished_embedded_waved_sweep_page_lists_its_waves(tmp_path: Path,
                                                               browser: Any) -> None:  # noqa: F811
    for repo in ("api", "web"):
        (tmp_path / repo).mkdir()
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(CATALOG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                          "plan", "sweep", "PLAN-001", "--wait", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    sid = json.loads(out.stdout)["sweep_id"]
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "coordination.cli.main", "--file", str(eco),
                           "ui", "--port", str(port)], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(ui, base)
        browser.get(f"{base}/sweeps/{sid}")
        states = ("return Object.fromEntries([...document.querySelectorAll('#waves [data-wave]')]"
                  ".map((e) => [e.dataset.wave, e.dataset.state]))")
        wait_until(lambda: browser.execute_script(states) == {"canary": "done", "rest": "done"},
                   20, "the finished sweep's waves on its page")
        assert "1/1 succeeded" in text_of(browser, '#waves [data-wave="canary"]')
        order = browser.execute_script(
            "return [...document.querySelectorAll('#waves [data-wave]')].map((e) => e.dataset.wave)")
        assert order == ["canary", "rest"]
    finally:
        ui.terminate()
        ui.wait(10)
