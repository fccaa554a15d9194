"""Web view benchmark: a 1,000-todo sweep page in a real headless Chromium.

Run by hand (needs chromium and chromedriver: apt-get install -y chromium
chromium-driver); never part of the test suite. Embedded mode, as
`coord plan sweep --wait --ui` runs it: the sweep's workers, the web view and
the in-process Redis stand-in share one process.

1. render   navigation start -> every todo's ``data-todo`` element on the page
            (the page fetches the laid-out graph and draws it), median of
            --repeat loads of the same sweep while nothing runs.
2. latency  event appended to the ledger (its ``ts``) -> the element's
            ``data-status`` changed (a MutationObserver's clock in the page),
            for every todo status change while the sweep runs; p50/p95/max.
            Same machine, same clock.

    python bench/ui.py [--todos 1000] [--repos 8] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _servers import free_port  # noqa: E402  (bench/_servers.py)


def catalog(root: Path, n: int, repos: int, gate: Path) -> Path:
    """``n`` todos over ``repos`` repos, each after up to two of the 40 todos before it;
    the first level waits on ``gate`` so the page can be timed while nothing moves."""
    import yaml

    rnd = random.Random(7)
    todos = []
    for i in range(n):
        preds = sorted({f"TODO-{j:04d}" for j in rnd.sample(range(max(0, i - 40), i), min(i, 2))})
        if i % 10 == 0:
            preds = []  # some roots, spread over the levels
        todos.append({
            "id": f"TODO-{i:04d}", "task": f"step {i}", "repo": f"r{i % repos}", "plan": "PLAN-001",
            "run": f"while [ ! -f {gate} ]; do sleep 0.05; done" if not preds else "true",
            "estimated_hours": rnd.choice([0.5, 1, 2, 4]), "blocked_by": preds,
        })
    doc = {"version": 1,
           "repos": [{"name": f"r{k}", "path": f"repos/r{k}", "concurrency": 4} for k in range(repos)],
           "coordination": {"plans": [{"id": "PLAN-001", "title": "bench", "status": "active"}],
                            "todos": todos}}
    for k in range(repos):
        (root / "repos" / f"r{k}").mkdir(parents=True, exist_ok=True)
    path = root / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"),
                            options=opts)


def poll(cond: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def measure_render(driver: Any, url: str, todos: int, repeat: int) -> dict[str, float]:
    """Navigation -> every todo's element present, median of ``repeat``; and the page's
    own figure of the last one."""
    count = "return document.querySelectorAll('[data-todo]').length"
    renders = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        driver.get(url)
        poll(lambda: driver.execute_script(count) == todos, 30, "every todo")
        renders.append(time.perf_counter() - t0)
    in_page = driver.execute_script(
        "return window.coord.rendered - performance.timing.navigationStart")
    return {"render_s": round(statistics.median(renders), 3),
            "render_in_page_s": round(in_page / 1000, 3)}


def measure_live(driver: Any, rt: Any, svc: Any, sid: str, gate: Path) -> dict[str, float]:
    """The gate opened, the sweep runs: each todo's status change in the page against
    its event in the ledger (p50, p95, max)."""
    driver.execute_script(
        "window.__changes = []; new MutationObserver((ms) => { for (const m of ms)"
        " window.__changes.push([m.target.dataset.todo, m.target.dataset.status,"
        " performance.timeOrigin + performance.now()]); }).observe("
        "document.querySelector('.graph'), {attributes: true, subtree: true,"
        " attributeFilter: ['data-status']});")
    t0 = time.perf_counter()
    gate.touch()
    svc.wait(sid, timeout=600)
    terminal = ("succeeded", "failed", "skipped", "cancelled")
    poll(lambda: driver.execute_script(
        "return [...document.querySelectorAll('[data-todo]')].every("
        f"e => {json.dumps(list(terminal))}.includes(e.dataset.status))"), 60,
        "every todo terminal on the page")
    out: dict[str, float] = {"sweep_s": round(time.perf_counter() - t0, 3)}
    ledger = {(e.todo_id, e.kind.split(".", 1)[1]): e.ts
              for e in rt.events.read(sid) if e.todo_id}
    changes = driver.execute_script("return window.__changes")
    lat = sorted(c[2] / 1000 - ledger[(c[0], c[1])] for c in changes
                 if (c[0], c[1]) in ledger)
    out["status_changes"] = len(lat)
    out["latency_p50_ms"] = round(1000 * lat[len(lat) // 2], 1)
    out["latency_p95_ms"] = round(1000 * lat[int(len(lat) * 0.95)], 1)
    out["latency_max_ms"] = round(1000 * lat[-1], 1)
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    _report.record("ui", [
        _report.figure(f"A {args.todos:,}-todo, {args.repos}-repo sweep page, navigation -> every "
                       f"`data-todo` present (median of {args.repeat})", out["render_s"], "s",
                       target=("<", 2, "s")),
        _report.figure("An event in the ledger -> its `data-status` in the page, p50",
                       out["latency_p50_ms"], "ms"),
        _report.figure(f"The same, p95 ({out['status_changes']:,} changes)",
                       out["latency_p95_ms"], "ms"),
    ])
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.todos} todos over {args.repos} repos (embedded, one process)")
    print(f"  render: navigation -> all data-todo present  {out['render_s'] * 1000:.0f} ms "
          f"(median of {args.repeat}; in-page {out['render_in_page_s'] * 1000:.0f} ms)")
    print(f"  live:   event -> data-status changed  p50 {out['latency_p50_ms']} ms, "
          f"p95 {out['latency_p95_ms']} ms, max {out['latency_max_ms']} ms "
          f"over {out['status_changes']} changes (sweep {out['sweep_s']} s)")


def main() -> None:
    ap = _report.arguments(__doc__, todos=1000, repos=8, repeat=3)
    args = ap.parse_args()

    import os

    os.environ.pop("COORD_REDIS_URL", None)  # embedded
    from coordination.runtime.context import get_runtime
    from coordination.sweeps import SweepService
    from coordination.ui.app import create_app
    from coordination.ui.server import Background
    from workers.embedded import embedded_workers

    tmp = Path(tempfile.mkdtemp(prefix="coord-bench-ui-"))
    gate = tmp / "gate"
    eco = catalog(tmp, args.todos, args.repos, gate)
    rt = get_runtime()
    svc = SweepService(rt, eco)
    port = free_port()
    driver = browser()
    out: dict[str, Any] = {"todos": args.todos, "repos": args.repos}
    try:
        with embedded_workers(rt, {f"r{k}": 4 for k in range(args.repos)}), \
                Background(create_app(rt, eco), "127.0.0.1", port):
            sid = svc.start("PLAN-001", strategy="eager")
            out.update(measure_render(driver, f"http://127.0.0.1:{port}/sweeps/{sid}",
                                      args.todos, args.repeat))
            out.update(measure_live(driver, rt, svc, sid, gate))
    finally:
        driver.quit()
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args)


if __name__ == "__main__":
    main()
