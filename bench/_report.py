"""A bench's figures as JSON, and the performance page's tables made from them.

Each bench ends with :func:`record`: its figures (name, value, unit, the baseline measured
in the same run, the ratio, the target and whether it was met) go to
``bench/results/<bench>.json`` with when, on what machine, under what load and by which
command they were taken. ``make bench-report`` (this module as a script) rewrites each
table of ``docs/explanation/performance.md`` that sits between
``<!-- bench-report:start NAME -->`` and ``<!-- bench-report:end NAME -->`` from
``bench/results/NAME.json``; the prose around the markers is left as it is, and a
table whose bench has no result yet is left as it was written. The figures the README
and ARCHITECTURE.md quote sit between ``<!-- bench-figures:start NAME -->`` and
``<!-- bench-figures:end NAME -->``: a paragraph of :data:`QUOTES`, its numbers taken
from the same results, so that a figure is written in one place (its result).

``BENCH_RESULTS=DIR`` writes the JSON elsewhere (``BENCH_RESULTS=off``: nowhere), for a
run with other flags than the page should show.

    .venv/bin/python bench/_report.py            # rewrite the page's tables
    .venv/bin/python bench/_report.py --check    # exit 1 if a page is not what the results say
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
import textwrap
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "explanation" / "performance.md"
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
#: The machine's load when the bench was imported: the figures were taken after it.
LOAD_AT_START = os.getloadavg()
STARTED = time.time()
BLOCK = re.compile(r"(<!-- bench-report:start (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- bench-report:end (?P=name) -->)", re.S)
QUOTE = re.compile(r"(<!-- bench-figures:start (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- bench-figures:end (?P=name) -->)", re.S)


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


# -- a bench's command line ------------------------------------------------------------------
def arguments(doc: str | None, **counts: int | tuple[int, str]) -> argparse.ArgumentParser:
    """A bench's parser: its docstring's first paragraph as the description, an integer
    option per ``counts`` (``--name`` from ``name=default`` or ``name=(default, help)``,
    underscores as dashes) and ``--json``; the bench adds what else it takes."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    for name, given in counts.items():
        default, text = given if isinstance(given, tuple) else (given, None)
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, default=default,
                        help=text if text is not None else f"({default})")
    ap.add_argument("--json", action="store_true", help="print only the final JSON line")
    return ap


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


# -- the figures other files quote ---------------------------------------------------------
@dataclass(frozen=True)
class Quoted:
    """One figure of a result as a sentence quotes it (each a text)."""

    value: str
    baseline: str
    ratio: str
    target: str
    verdict: str  # met, **not met**, or empty
    check: str  # "target <= 1.2x: met", or empty
    date: str
    cpus: str
    bench: str


def quoted(doc: dict[str, Any], start: str) -> Quoted:
    """The figure of ``doc`` whose name starts with ``start``."""
    found = [f for f in doc["figures"] if f["name"].startswith(start)]
    if len(found) != 1:
        raise KeyError(f"bench/results/{doc['bench']}.json: {len(found)} figures named "
                       f"{start!r}...")
    f = found[0]
    verdict = {True: "met", False: "**not met**", None: ""}[f["met"]]
    return Quoted(
        number(f["value"], f["unit"]),
        number(f["baseline"], f["unit"]) if f["baseline"] is not None else "",
        number(f["ratio"], "x") if f["ratio"] is not None else "",
        f["target"] or "", verdict,
        f"target {f['target']}: {verdict}" if f["target"] else "",
        doc["date"][:10], str(doc["machine"]["cpus"]), f"`bench/{doc['bench']}.py`")


#: The paragraphs other files quote figures in: NAME -> (the file, the figures (a name for
#: the sentence -> (bench, the start of the figure's name)), the sentence). The sentence
#: is written here; every number in it comes from bench/results/.
QUOTES: dict[str, tuple[Path, dict[str, tuple[str, str]], str]] = {
    "readme": (README, {
        "sweep": ("fleet_sweep", "`for_each` sweep of `run: true` over 10,000 repos"),
        "cpu": ("fleet_sweep", "CPU per instance"),
        "rss": ("fleet_sweep", "The CLI's peak RSS"),
        "status": ("fleet_sweep", "`coord sweep status ID` of"),
        "commands": ("fleet_sweep", "Redis commands per instance"),
        "init": ("fleet_init", "`coord init` over 1,000 real-shaped checkouts"),
    }, "Measured on the shared {sweep.cpus}-core VM ({sweep.bench}, {init.bench}, "
       "{sweep.date}; each against a baseline in the same run, every figure and the load in "
       "[performance](docs/explanation/performance.md)): a `for_each` sweep over 10,000 "
       "repos on 50 workers took {sweep.ratio} the per-instance time ({sweep.check}) and "
       "{cpu.ratio} the CPU ({cpu.check}) of the same over 100 repos, with the CLI at "
       "{rss.value} ({rss.check}); `coord init` over 1,000 real-shaped checkouts took {init.ratio} a "
       "`git rev-parse` + `cat` loop over them ({init.check}); `sweep status` of the "
       "10,000-instance sweep took {status.ratio} `coord --version` ({status.check}), and "
       "the sweep ran {commands.value} Redis commands per instance ({commands.check})."),
    "readme-landing": (README, {
        "window": ("land_vs", "Landing window of a 10-repo change, signed evidence"),
        "check": ("approval", "One vote's SSH signature check"),
    }, "Measured ({window.date}, [performance](docs/explanation/performance.md#changes-and-"
       "approvals)): a 10-repo change's landing window with signed evidence is "
       "{window.ratio} 0.3's in the same run ({window.check}), and an approval's SSH "
       "signature check takes {check.value} ({check.check})."),
    "architecture": (ARCHITECTURE, {
        "sweep": ("fleet_sweep", "`for_each` sweep of `run: true` over 10,000 repos"),
        "commands": ("fleet_sweep", "Redis commands per instance"),
    }, "Measured on one {sweep.cpus}-core VM ({sweep.bench}, {sweep.date}; the performance "
       "page): a `for_each` sweep over 10,000 repos on 50 workers of 200 repos finished at "
       "{sweep.value} and {commands.value} Redis commands per instance (the 100-repo "
       "baseline: {sweep.baseline})."),
}


def quote(name: str, docs: dict[str, dict[str, Any]]) -> str | None:
    """The paragraph ``name`` of :data:`QUOTES`, wrapped; None while a bench it quotes
    has no result."""
    _path, figures, sentence = QUOTES[name]
    if any(bench not in docs for bench, _start in figures.values()):
        return None
    values = {k: quoted(docs[bench], start) for k, (bench, start) in figures.items()}
    return textwrap.fill(sentence.format(**values), width=90, break_on_hyphens=False) + "\n"


def render_quotes(text: str, docs: dict[str, dict[str, Any]]) -> str:
    """``text`` with each quoted paragraph rewritten (kept while its benches have no result)."""
    def one(m: re.Match[str]) -> str:
        if m["name"] not in QUOTES:
            raise KeyError(f"<!-- bench-figures:start {m['name']} -->: no such paragraph in "
                           "bench/_report.py's QUOTES")
        new = quote(m["name"], docs)
        return m.group(0) if new is None else m.group(1) + new + m.group(4)

    return QUOTE.sub(one, text)


def quoting_files() -> list[Path]:
    return sorted({path for path, _figures, _sentence in QUOTES.values()})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if the page's tables or the figures the "
                    "README and ARCHITECTURE.md quote differ from the results")
    args = ap.parse_args()
    page = PAGE.read_text(encoding="utf-8")
    docs = results()
    new, done, kept = render(page, docs)
    marked = {m["name"] for m in BLOCK.finditer(page)}
    unmarked = sorted(set(docs) - marked)
    quoting = {path: path.read_text(encoding="utf-8") for path in quoting_files()}
    quotes = {path: render_quotes(text, docs) for path, text in quoting.items()}
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, text in [(PAGE, page), *quoting.items()]
                 if (new if p == PAGE else quotes[p]) != text]
        if stale:
            print(f"{', '.join(stale)}: not what bench/results/ says: run "
                  "`make bench-report`", file=sys.stderr)
            return 1
        return 0
    if new != page:
        PAGE.write_text(new, encoding="utf-8")
    for path, text in quotes.items():
        if text != quoting[path]:
            path.write_text(text, encoding="utf-8")
    print(f"{PAGE.relative_to(ROOT)}: {len(done)} table(s) from bench/results/"
          f" ({', '.join(done) or 'none'}); kept as written, no result yet: "
          f"{', '.join(kept) or 'none'}; figures quoted in "
          f"{', '.join(str(p.relative_to(ROOT)) for p in quotes)}")
    if unmarked:
        print(f"results without a table on the page (add its markers): {', '.join(unmarked)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
