"""Every benchmark is run by `make bench` and documented, and the performance page's tables
are what the committed results say (issue #42).

A bench is any ``bench/*.py`` whose name does not start with ``_`` (``_report.py``,
``_servers.py``, ``_reaper.py`` are helpers): a new one fails here until it is in the
Makefile's ``BENCHES`` and has a ``## bench/NAME.py`` section in bench/README.md. The
benches themselves are never run by the suite.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_report", BENCH / "_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_bench_report"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def benches() -> set[str]:
    return {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_")}


def make_benches() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    m = re.search(r"^BENCHES\s*:?=((?:.*\\\n)*.*)$", text, re.M)
    assert m, "the Makefile has no BENCHES list"
    return m.group(1).replace("\\\n", " ").split()


def test_every_bench_is_in_make_bench() -> None:
    listed = make_benches()
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    missing = sorted(benches() - set(listed))
    assert not missing, f"bench/{missing[0]}.py is not in the Makefile's BENCHES: {missing}"
    gone = sorted(set(listed) - benches())
    assert not gone, f"BENCHES names benches that do not exist: {gone}"
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nbench: ", 1)[1]
    recipe = recipe.split("\n\n", 1)[0]
    assert "$(BENCHES)" in recipe and "bench/_report.py" in recipe, recipe


def test_every_bench_has_a_readme_section() -> None:
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## bench/(\w+)\.py$", readme, re.M))
    missing = sorted(benches() - sections)
    assert not missing, f"bench/README.md has no `## bench/NAME.py` section for {missing}"


def test_the_page_is_what_the_results_say(report: ModuleType) -> None:
    page = report.PAGE.read_text(encoding="utf-8")
    new, _done, _kept = report.render(page, report.results())
    assert new == page, "docs/explanation/performance.md is not what bench/results/ says: " \
                        "run `make bench-report` and commit the page"


def test_the_page_marks_benches_that_exist(report: ModuleType) -> None:
    page = report.PAGE.read_text(encoding="utf-8")
    starts = re.findall(r"<!-- bench-report:start ([\w-]+) -->", page)
    ends = re.findall(r"<!-- bench-report:end ([\w-]+) -->", page)
    assert starts == ends, "a table's start and end markers do not pair up"
    assert [m["name"] for m in report.BLOCK.finditer(page)] == starts
    assert len(starts) == len(set(starts)), "a bench has two tables"
    assert not set(starts) - benches(), f"tables of no bench: {set(starts) - benches()}"
    results = {p.stem for p in (BENCH / "results").glob("*.json")}
    assert not results - set(starts), f"results with no table on the page: {results - set(starts)}"


def test_the_readme_quotes_the_landing_and_approval_figures(report: ModuleType) -> None:
    """#38's figures in the README: the landing window against 0.3 and one approval's
    signature check, quoted from bench/results/ (the page's check keeps them current)."""
    path, figures, _sentence = report.QUOTES["readme-landing"]
    assert path == ROOT / "README.md"
    land = json.loads((BENCH / "results" / "land_vs.json").read_text(encoding="utf-8"))
    approval = json.loads((BENCH / "results" / "approval.json").read_text(encoding="utf-8"))
    assert {b for b, _start in figures.values()} == {"land_vs", "approval"}
    assert report.quoted(land, figures["window"][1]).target == "<= 1.2x"
    assert report.quoted(approval, figures["check"][1]).target == "<= 50 ms"
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    quoted = " ".join((report.quote("readme-landing", report.results()) or "").split())
    assert quoted and quoted in readme


FIGURE_KEYS = {"name", "value", "unit", "baseline", "baseline_name", "ratio", "target", "met"}


def test_every_result_says_when_how_and_under_what_load() -> None:
    for path in sorted((BENCH / "results").glob("*.json")):
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        assert doc["bench"] == path.stem, path
        assert re.match(r"\d{4}-\d{2}-\d{2}T", doc["date"]), path
        assert doc["command"].startswith(f"bench/{path.stem}.py"), path
        machine = doc["machine"]
        assert machine["cpus"] >= 1 and len(machine["load_at_start"]) == 3, path
        assert len(machine["load_at_end"]) == 3, path
        assert doc["figures"], f"{path}: no figure"
        for f in doc["figures"]:
            assert set(f) == FIGURE_KEYS, (path, f)
            assert f["met"] in (True, False, None), (path, f)
            assert (f["target"] is None) == (f["met"] is None) or f["value"] is None, (path, f)


def test_render_rewrites_only_the_marked_tables(report: ModuleType) -> None:
    fig = report.figure("One check", 12.5, "ms", baseline=5.0, baseline_name="one verify",
                        target=("<=", 50, "ms"))
    assert fig.ratio == 2.5 and fig.met is True and fig.target == "<= 50 ms"
    over = report.figure("Ratio", 3.0, "s", baseline=1.0, target=("<=", 2, "x"), on="ratio")
    assert over.met is False and over.target == "<= 2x"
    doc = {"bench": "approval", "date": "2026-11-25T09:00:00+00:00", "command": "bench/approval.py",
           "commit": "abc1234", "machine": {"cpus": 2, "load_at_start": [1.5, 1, 1],
                                            "load_at_end": [2.25, 1, 1]},
           "figures": [{k: v for k, v in vars(fig).items()}]}
    page = ("prose before\n<!-- bench-report:start approval -->\nold table\n"
            "<!-- bench-report:end approval -->\nprose between\n"
            "<!-- bench-report:start notify -->\nhand table\n<!-- bench-report:end notify -->\n")
    new, done, kept = report.render(page, {"approval": doc})
    assert done == ["approval"] and kept == ["notify"]
    assert "old table" not in new and "hand table" in new
    assert new.startswith("prose before\n") and "prose between\n" in new
    assert "| One check | 12.5 ms | one verify: 5 ms | 2.50x | <= 50 ms | met |" in new
    assert "load average 1.5/2.25" in new and "`bench/approval.py`, 2026-11-25" in new
    assert report.render(new, {"approval": doc})[0] == new  # a second run changes nothing


def test_the_quoted_figures_are_what_the_results_say(report: ModuleType) -> None:
    docs = report.results()
    for path in report.quoting_files():
        text = path.read_text(encoding="utf-8")
        assert report.render_quotes(text, docs) == text, (
            f"{path.name}'s figures are not what bench/results/ says: run `make bench-report` "
            "and commit it")


def test_every_quoted_paragraph_is_marked_once_and_quotes_results(report: ModuleType) -> None:
    docs = report.results()
    for name, (path, figures, _sentence) in report.QUOTES.items():
        text = path.read_text(encoding="utf-8")
        assert text.count(f"<!-- bench-figures:start {name} -->") == 1, (path, name)
        assert text.count(f"<!-- bench-figures:end {name} -->") == 1, (path, name)
        assert report.quote(name, docs) is not None, f"{name} quotes a bench with no result"
        for bench, start in figures.values():
            report.quoted(docs[bench], start)  # exactly one figure of that name


def test_a_quoted_paragraph_follows_its_result(report: ModuleType) -> None:
    docs = json.loads(json.dumps(report.results()))
    text = "before\n<!-- bench-figures:start readme -->\nold words\n<!-- bench-figures:end readme -->\n"
    first = report.render_quotes(text, docs)
    assert "old words" not in first and first.startswith("before\n")
    assert report.render_quotes(first, docs) == first  # a second run changes nothing
    fig = next(f for f in docs["fleet_sweep"]["figures"]
               if f["name"].startswith("Redis commands per instance"))
    fig.update(value=19.5, met=True)
    again = report.render_quotes(first, docs)
    assert "19.5 Redis commands per instance (target <= 20: met)" in " ".join(again.split())


def test_the_readme_writes_its_figures_only_where_they_are_generated(report: ModuleType) -> None:
    text = report.README.read_text(encoding="utf-8")
    outside = report.QUOTE.sub("", text)
    figures = re.findall(r"\b\d+(?:\.\d+)?x\b|\b\d[\d,.]*\s?(?:ms|MB|GB)\b", outside)
    assert figures == [], ("a figure written by hand in README.md: quote it from "
                           "bench/results/ (bench/_report.py QUOTES)")
