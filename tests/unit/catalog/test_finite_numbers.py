"""Numbers are finite and bounded wherever they enter: hand-edited YAML, CLI options, MCP
tool arguments (issue #23). `--estimate inf` was stored, after which every sweep of the
plan crashed, `plan show --json` printed `Infinity` and the web view's plan page was a 500;
`1e308` over MCP was stored too (the sum of two is infinite).

The rule is the catalog models' (``allow_inf_nan=False`` and an upper bound on each
number), so YAML, CLI and MCP all meet it: bad input exits 2 naming file, line and field,
and changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from coordination.catalog.file import loader
from coordination.catalog.models import MAX_HOURS, Catalog
from coordination.errors import CatalogError
from tests.unit.support.cli import ROOT, clean_error, coord

pytestmark = pytest.mark.timeout(90)

BASE = """\
version: 1
repos:
  - name: lib
  - name: api
    concurrency: 2
    breaker: {failures: 3, cooldown: 60}
resources:
  - name: db
    capacity: 1
coordination:
  issues:
    - id: ISSUE-001
      title: an issue
      metadata: {rank: 1}
  plans:
    - id: PLAN-001
      title: a plan
  todos:
    - id: TODO-001
      task: a todo
      repo: api
      plan: PLAN-001
      run: "true"
      timeout: 60
      retries: 1
      estimated_hours: 2
      actual_hours: 1
  dependencies:
    - id: DEP-001
      consumer: api
      provider: lib
      validation: {command: "true", timeout: 5}
"""


def _sub(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


#: (what to replace, with what, the field the error must name, what it must say)
BAD = {
    "estimate .inf": ("estimated_hours: 2", "estimated_hours: .inf", "todos[0].estimated_hours",
                      "finite"),
    "estimate -.inf": ("estimated_hours: 2", "estimated_hours: -.inf",
                       "todos[0].estimated_hours", "finite"),
    "estimate .nan": ("estimated_hours: 2", "estimated_hours: .nan", "todos[0].estimated_hours",
                      "finite"),
    "estimate 1e400 (inf once parsed)": ("estimated_hours: 2", "estimated_hours: 1.0e+400",
                                         "todos[0].estimated_hours", "finite"),
    "estimate 1e308": ("estimated_hours: 2", "estimated_hours: 1.0e+308",
                       "todos[0].estimated_hours", "<= 100000"),
    "estimate just over": ("estimated_hours: 2", f"estimated_hours: {MAX_HOURS + 1}",
                           "todos[0].estimated_hours", "<= 100000"),
    "actual .inf": ("actual_hours: 1", "actual_hours: .inf", "todos[0].actual_hours", "finite"),
    "actual 1e308 as text": ("actual_hours: 1", "actual_hours: '1e308'",
                             "todos[0].actual_hours", "<= 100000"),
    "timeout .nan": ("timeout: 60", "timeout: .nan", "todos[0].timeout", "finite"),
    "timeout .inf": ("timeout: 60", "timeout: .inf", "todos[0].timeout", "finite"),
    "retries huge": ("retries: 1", "retries: 100000000000000000000000000000",
                     "todos[0].retries", "<= 100"),
    "concurrency": ("concurrency: 2", "concurrency: 1000000", "repos[1].concurrency", "<= 1024"),
    "capacity .inf": ("capacity: 1", "capacity: .inf", "resources[0].capacity", ""),
    "breaker cooldown .inf": ("cooldown: 60", "cooldown: .inf", "repos[1].breaker.cooldown",
                              "finite"),
    "validation timeout .nan": ("timeout: 5", "timeout: .nan",
                                "dependencies[0].validation.timeout", "finite"),
    "metadata .inf": ("metadata: {rank: 1}", "metadata: {rank: .inf}", "issues[0].metadata",
                      "metadata.rank: not a finite number"),
    "metadata deep .nan": ("metadata: {rank: 1}", "metadata: {a: [1, {b: .nan}]}",
                           "issues[0].metadata", "metadata.a[1].b: not a finite number"),
}


def test_the_base_catalog_is_good() -> None:
    cat = loader.load_catalog(BASE.encode(), "ecosystem.yaml")
    assert cat.todo("TODO-001") is not None


@pytest.mark.parametrize("name", list(BAD))
def test_yaml_numbers_must_be_finite_and_bounded(name: str) -> None:
    old, new, field, says = BAD[name]
    text = _sub(old, new)
    with pytest.raises(CatalogError) as info:
        loader.load_catalog(text.encode(), "ecosystem.yaml")
    message = str(info.value)
    line = text[:text.index(new)].count("\n") + 1
    assert f"ecosystem.yaml:{line}: {field}: " in message, message
    assert says in message, message


def test_bounds_are_inclusive_and_edge_values_load() -> None:
    text = (BASE.replace("estimated_hours: 2", f"estimated_hours: {MAX_HOURS}")
            .replace("actual_hours: 1", "actual_hours: 1.0e-300")
            .replace("timeout: 60", "timeout: 604800").replace("retries: 1", "retries: 100")
            .replace("concurrency: 2", "concurrency: 1024")
            .replace("metadata: {rank: 1}", "metadata: {big: 100000000000000000000000, x: -0.0}"))
    cat = loader.load_catalog(text.encode(), "ecosystem.yaml")
    t = cat.todo("TODO-001")
    assert t is not None and t.estimated_hours == MAX_HOURS and t.retries == 100


def test_models_refuse_non_finite_numbers_from_any_caller() -> None:
    """The MCP server and library callers build models too: the rule is the models'."""
    for bad in (float("inf"), float("nan"), 1e308):
        doc = {"version": 1, "repos": [{"name": "api"}], "coordination": {"todos": [
            {"id": "TODO-001", "task": "t", "repo": "api", "estimated_hours": bad}]}}
        with pytest.raises(ValueError):
            Catalog.model_validate(doc)


# -- the CLI -------------------------------------------------------------------------------
def _catalog(tmp_path: Path) -> Path:
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(BASE)
    return eco


@pytest.mark.parametrize("args", [
    ("todo", "create", "--task", "x", "--repo", "api", "--plan", "PLAN-001", "--estimate", "inf"),
    ("todo", "create", "--task", "x", "--repo", "api", "--estimate", "1e308"),
    ("todo", "create", "--task", "x", "--repo", "api", "--estimate", "nan"),
    ("todo", "update", "TODO-001", "--estimate", "inf"),
    ("todo", "update", "TODO-001", "--estimate", "100001"),
    ("todo", "complete", "TODO-001", "--hours", "inf"),
    ("todo", "complete", "TODO-001", "--hours", "1e308"),
    ("todo", "update", "TODO-001", "--timeout", "inf"),
    ("todo", "update", "TODO-001", "--timeout", "nan"),
], ids=lambda a: " ".join(a[:2] + a[-2:]))
def test_cli_refuses_non_finite_or_huge_numbers_and_changes_nothing(
        tmp_path: Path, args: tuple[str, ...]) -> None:
    eco = _catalog(tmp_path)
    before = eco.read_bytes()
    r = coord(eco, *args)
    clean_error(r, 2)
    assert r.stdout == ""
    assert eco.read_bytes() == before
    log = tmp_path / ".ecosystem.yaml.coord.audit.jsonl"
    assert not log.exists() or log.read_text() == ""


def test_cli_names_file_line_and_field(tmp_path: Path) -> None:
    eco = _catalog(tmp_path)
    r = coord(eco, "todo", "update", "TODO-001", "--estimate", "inf")
    clean_error(r, 2)
    assert f"{eco}:" in r.stderr and "todos[0].estimated_hours: " in r.stderr, r.stderr
    assert "finite" in r.stderr and "nothing was written" in r.stderr, r.stderr


def test_a_hand_edited_inf_is_refused_by_every_read(tmp_path: Path) -> None:
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(_sub("estimated_hours: 2", "estimated_hours: .inf"))
    for args in (("plan", "show", "PLAN-001", "--json"), ("todo", "list", "--json"),
                 ("plan", "sweep", "PLAN-001", "--dry-run", "--json")):
        r = coord(eco, *args)
        clean_error(r, 2)
        assert r.stdout == "" and "todos[0].estimated_hours" in r.stderr, (args, r.stderr)


# -- MCP -----------------------------------------------------------------------------------
def test_mcp_refuses_huge_estimates_and_hours(tmp_path: Path) -> None:
    mcp_client = pytest.importorskip("mcp.client.stdio")
    from mcp import ClientSession

    eco = _catalog(tmp_path)
    before = eco.read_bytes()

    async def main() -> list[tuple[bool, str]]:
        params = mcp_client.StdioServerParameters(
            command=sys.executable,
            args=["-m", "coordination.cli.main", "--file", str(eco), "mcp"], cwd=str(ROOT))
        out = []
        with anyio.fail_after(80):
            async with mcp_client.stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    for tool, arguments in (
                        ("coord_create_todo", {"task": "x", "repo": "api", "plan": "PLAN-001",
                                               "estimated_hours": 1e308}),
                        ("coord_create_todo", {"task": "x", "repo": "api",
                                               "estimated_hours": MAX_HOURS + 0.5}),
                        ("coord_complete_todo", {"todo_id": "TODO-001", "hours": 1e308}),
                    ):
                        res = await session.call_tool(tool, arguments)
                        out.append((res.is_error, res.content[0].text))  # type: ignore[union-attr]
        return out

    for is_error, text in anyio.run(main):
        assert is_error, text
        assert "100000" in text and "hours" in text, text
    assert eco.read_bytes() == before
