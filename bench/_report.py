"""A bench's figures as JSON, and the performance page's tables made from them.

Each bench ends with :func:`record`: its figures (name, value, unit, the baseline measured
in the same run, the ratio, the target and whether it was met) go to
``bench/results/<bench>.json`` with when, on what machine, under what load and by which
command they were taken. ``make bench-report`` (this module as a script) rewrites each
table of ``docs/explanation/performance.md`` that sits between
``<!-- bench-report:start NAME -->`` and ``<!-- bench-report:end NAME -->`` from
``bench/results/NAME.json``; the prose around the markers is left as it is, and a
table whose bench has no result yet is left as it was written.

``BENCH_RESULTS=DIR`` writes the JSON elsewhere (``BENCH_RESULTS=off``: nowhere), for a
run with other flags than the page should show.

    .venv/bin/python bench/_report.py            # rewrite the page's tables
    .venv/bin/python bench/_report.py --check    # exit 1 if the page is not what the results say
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "explanation" / "performance.md"
#: The machine's load when the bench was imported: the figures were taken after it.
LOAD_AT_START = os.getloadavg()
STARTED = time.time()
BLOCK = re.compile(r"(<!-- bench-report:start (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- bench-report:end (?P=name) -->)", re.S)


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``target`` is written as a reader reads it (``<= 2 x``)."""

    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None


def meets(value: float | None, op: str, limit: float) -> bool | None:
    """Whether ``value`` meets ``op limit`` (``<=``, ``<``, ``>=``, ``>``); None unmeasured."""
    if value is None:
        return None
    return {"<=": value <= limit, "<": value < limit, ">=": value >= limit,
            ">": value > limit}[op]


def figure(name: str, value: float | None, unit: str = "", *, baseline: float | None = None,
           baseline_name: str | None = None, ratio: float | None = None,
           target: tuple[str, float, str] | None = None, on: str = "value") -> Figure:
    """A :class:`Figure`; ``target=(op, limit, unit)`` is checked against the value, or
    against the ratio with ``on="ratio"``. The ratio is value / baseline unless given."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    met = None
    text = None
    if target is not None:
        op, limit, tunit = target
        met = meets(ratio if on == "ratio" else value, op, limit)
        text = f"{op} {limit:g}{tunit if tunit in ('', 'x') else ' ' + tunit}"
    return Figure(name, value, unit, baseline, baseline_name, ratio, text, met)


def _sig(v: Any) -> Any:
    """Floats to 4 significant figures: the run's noise is larger, and diffs stay short."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def record(bench: str, figures: Iterable[Figure], *, argv: list[str] | None = None,
           notes: str | None = None) -> Path | None:
    """Write ``bench/results/<bench>.json`` (or under ``$BENCH_RESULTS``); returns its path."""
    where = os.environ.get("BENCH_RESULTS", str(RESULTS))
    if where.lower() in ("off", "0", "no", ""):
        return None
    args = sys.argv[1:] if argv is None else argv
    doc: dict[str, Any] = {
        "bench": bench,
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "seconds": round(time.time() - STARTED, 1),
        "command": shlex.join([f"bench/{bench}.py", *args]),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in LOAD_AT_START],
                    "load_at_end": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "system": platform.platform()},
        "figures": [{k: _sig(v) for k, v in asdict(f).items()} for f in figures],
    }
    if notes:
        doc["notes"] = notes
    path = Path(where) / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


# -- the page ------------------------------------------------------------------------------
def number(v: float | None, unit: str = "") -> str:
    """Three figures or so, as a reader wants them: 1,520 / 15.2 / 1.52 / 0.152 / 0.0152."""
    if v is None:
        return "–"
    a = abs(v)
    text = (f"{v:,.0f}" if a >= 100 or float(v).is_integer() else f"{v:.1f}" if a >= 10
            else f"{v:.2f}" if a >= 0.1 else f"{v:.3g}")
    return f"{text}x" if unit == "x" else f"{text} {unit}".strip()


def table(doc: dict[str, Any]) -> str:
    """The Markdown of one result: a line saying when and how, then its figures."""
    m = doc["machine"]
    load = "/".join(f"{x:g}" for x in m["load_at_start"][:1] + m["load_at_end"][:1])
    head = (f"`{doc['command']}`, {doc['date'][:10]}"
            + (f", {doc['commit']}" if doc.get("commit") else "")
            + f"; {m['cpus']} CPUs, load average {load} (start/end, 1 min)"
            + (f"; {doc['notes']}" if doc.get("notes") else "") + ":")
    rows = ["| Figure | Value | Baseline, same run | Ratio | Target | |", "|---|---|---|---|---|---|"]
    for f in doc["figures"]:
        base = number(f["baseline"], f["unit"]) if f["baseline"] is not None else "–"
        if f.get("baseline_name"):
            base = f"{f['baseline_name']}: {base}" if f["baseline"] is not None else f["baseline_name"]
        verdict = {True: "met", False: "**not met**", None: ""}[f["met"]]
        rows.append(f"| {f['name']} | {number(f['value'], f['unit'])} | {base} | "
                    f"{number(f['ratio'], 'x') if f['ratio'] is not None else '–'} | "
                    f"{f['target'] or '–'} | {verdict} |")
    return head + "\n\n" + "\n".join(rows) + "\n"


def results(directory: Path = RESULTS) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(directory.glob("*.json"))}


def render(page: str, docs: dict[str, dict[str, Any]]) -> tuple[str, list[str], list[str]]:
    """The page with each marked table rewritten; the names rewritten and those kept."""
    done: list[str] = []
    kept: list[str] = []

    def one(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in docs:
            kept.append(name)
            return m.group(0)
        done.append(name)
        return m.group(1) + table(docs[name]) + m.group(4)

    return BLOCK.sub(one, page), done, kept


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if the page's tables differ from the results")
    args = ap.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    new, done, kept = render(page, results())
    marked = {m["name"] for m in BLOCK.finditer(page)}
    unmarked = sorted(set(results()) - marked)
    if args.check:
        if new != page:
            print(f"{PAGE.relative_to(ROOT)} is not what bench/results/ says: run "
                  "`make bench-report`", file=sys.stderr)
            return 1
        return 0
    if new != page:
        PAGE.write_text(new, encoding="utf-8")
    print(f"{PAGE.relative_to(ROOT)}: {len(done)} table(s) from bench/results/"
          f" ({', '.join(done) or 'none'}); kept as written, no result yet: "
          f"{', '.join(kept) or 'none'}")
    if unmarked:
        print(f"results without a table on the page (add its markers): {', '.join(unmarked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
