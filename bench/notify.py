"""Webhook latency with a slow endpoint beside a healthy one (issue #39 item 11).

A redis-server this script starts on a free port in a temp dir holds the outbox; one
:class:`NotifierThread` (the one a worker runs) delivers. Events (``todo.failed``) are
emitted every ``--every`` s into the event log, as a sweep's workers emit them; each
webhook that lists the kind gets a delivery. The healthy receiver answers at once and
notes, per delivery, the time from the event (its ``ts``) to the POST's arrival.

Two phases, same run, same machine:

- ``baseline``: the healthy webhook alone;
- ``slow``: the healthy webhook and one answering after ``--slow`` s (25 by default:
  slower than the delivery timeout, 10 s, so each of its POSTs times out and is tried
  again after its backoff).

Printed: the healthy webhook's p50/p95 latency in each phase and the ratio of the p95s
(target: within 2x). Before lanes one POST went at a time, so every healthy delivery
queued behind the slow endpoint's 10 s timeouts.

    .venv/bin/python bench/notify.py [--events 60] [--every 0.25] [--slow 25] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _report  # noqa: E402  (bench/_report.py: the results JSON)
from _servers import start_redis  # noqa: E402  (bench/, on sys.path as the script's directory)
from coordination.runtime.context import Runtime  # noqa: E402
from coordination.settings import Settings  # noqa: E402
from coordination.sweeps.notices.notify import NotifierThread  # noqa: E402
from tests.integration.receivers import Slow  # noqa: E402  (the tests' slow webhook)

TARGET_RATIO = 2.0


def latencies(rcv: Slow) -> list[float]:
    """Per delivery a receiver got: the time from its event (``ts``) to the POST's arrival."""
    with rcv.lock:
        return [at - float(json.loads(body)["event"]["ts"])
                for at, body in zip(rcv.arrived, rcv.bodies)]


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


def phase(url: str, namespace: str, events: int, every: float, slow: float | None
          ) -> dict[str, Any]:
    rt = Runtime.create(Settings(redis_url=url, namespace=namespace))
    healthy = Slow(0.0)
    slow_rcv = Slow(slow) if slow is not None else None
    hooks = [healthy] + ([slow_rcv] if slow_rcv else [])
    rt.outbox().publish_targets([{"url": h.url, "events": ["todo.failed"], "secret_env": None,
                                  "format": "json"} for h in hooks])
    notifier = NotifierThread(rt)
    notifier.holding = True  # pass at once (a worker alone takes the outbox on its first pass)
    notifier.start()
    try:
        rt.events.emit("sweep.queued", sweep_id="BENCH")
        for i in range(events):
            rt.events.emit("todo.failed", sweep_id="BENCH", todo_id=f"TODO-{i:03d}")
            time.sleep(every)
        deadline = time.monotonic() + 60
        while healthy.count() < events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        notifier.halt()
        for h in hooks:
            h.close()
        notifier.stop()
    lat = sorted(latencies(healthy))
    return {"phase": "slow" if slow is not None else "baseline", "delivered": len(lat),
            "events": events, "p50_s": statistics.median(lat) if lat else None,
            "p95_s": p95(lat) if lat else None,
            "slow_attempts": slow_rcv.count() if slow_rcv else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60, help="events per phase (each a delivery)")
    ap.add_argument("--every", type=float, default=0.25, help="seconds between events")
    ap.add_argument("--slow", type=float, default=25.0, help="the slow endpoint's answer, s")
    ap.add_argument("--json", action="store_true", help="only the final JSON line")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="coord-bench-notify-") as tmp:
        proc, url = start_redis(Path(tmp))
        try:
            base = phase(url, "bench-a", args.events, args.every, None)
            slow = phase(url, "bench-b", args.events, args.every, args.slow)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ratio = (slow["p95_s"] / base["p95_s"]) if base["p95_s"] and slow["p95_s"] else None
    doc = {"baseline": base, "slow": slow, "p95_ratio": ratio, "target_ratio": TARGET_RATIO,
           "met": ratio is not None and ratio <= TARGET_RATIO
           and slow["delivered"] == args.events}
    if not args.json:
        for p in (base, slow):
            lat = ("no latency" if p["p50_s"] is None else
                   f"latency p50 {p['p50_s'] * 1000:.0f} ms, p95 {p['p95_s'] * 1000:.0f} ms")
            print(f"{p['phase']:>8}: healthy webhook {p['delivered']}/{p['events']} delivered, "
                  f"{lat}"
                  + (f" (slow endpoint tried {p['slow_attempts']}x, answering after "
                     f"{args.slow:g} s)" if p["phase"] == "slow" else ""))
        shown = "n/a (nothing delivered)" if ratio is None else f"{ratio:.2f}x"
        print(f"p95 with a slow endpoint / without: {shown} (target <= {TARGET_RATIO:g}x: "
              f"{'met' if doc['met'] else 'NOT met'})")
    print(json.dumps(doc))
    ms = 1000.0
    _report.record("notify", [
        _report.figure(f"A healthy webhook's p95 latency beside a {args.slow:g} s endpoint "
                       f"({slow['delivered']}/{args.events} delivered)",
                       slow["p95_s"] and slow["p95_s"] * ms, "ms",
                       baseline=base["p95_s"] and base["p95_s"] * ms,
                       baseline_name="the same webhook alone", ratio=ratio,
                       target=("<=", TARGET_RATIO, "x"), on="ratio"),
        _report.figure("Its p50 latency", slow["p50_s"] and slow["p50_s"] * ms, "ms",
                       baseline=base["p50_s"] and base["p50_s"] * ms,
                       baseline_name="alone"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
