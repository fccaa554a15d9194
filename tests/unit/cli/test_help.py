"""Every command's `--help` has an example, every group's summary names its commands,
and the version comes from one place.

The walk goes over click's command tree from the root (`COMMANDS` in cli/main.py), so a
command added later is checked without being listed here; a failure names the command.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from coordination.cli.main import COMMANDS, cli

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]


def walk(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"coord {' '.join((*path, name))} is listed but not found"
        yield (*path, name), command
        if isinstance(command, click.Group):
            sub = click.Context(command, info_name=name, parent=ctx)
            yield from walk(command, sub, (*path, name))


@pytest.fixture(scope="module")
def tree() -> list[tuple[tuple[str, ...], click.Command]]:
    root = click.Context(cli, info_name="coord")
    return list(walk(cli, root))


def test_the_walk_sees_the_whole_tree(tree: list[tuple[tuple[str, ...], click.Command]]) -> None:
    names = {" ".join(p) for p, _ in tree}
    assert {"plan create", "milestone add", "dep remove", "repo update", "sweep rollback",
            "todo run", "issue delete"} <= names, names
    assert len(names) > 50


def test_every_command_help_has_an_example(
        tree: list[tuple[tuple[str, ...], click.Command]]) -> None:
    runner = CliRunner()
    missing = []
    for path, _command in tree:
        r = runner.invoke(cli, [*path, "--help"], prog_name="coord")
        if r.exit_code != 0 or not re.search(r"^\s*Examples?:\s*$", r.output, re.M):
            missing.append(f"coord {' '.join(path)}" + (
                f" (--help exited {r.exit_code}: {r.output.strip()[:200]})" if r.exit_code
                else ""))
    assert not missing, (
        f"{len(missing)} command(s) whose --help has no 'Example:' section (add one to the "
        "docstring, as `coord issue create` does): " + ", ".join(missing))


def test_group_summaries_name_their_commands(
        tree: list[tuple[tuple[str, ...], click.Command]]) -> None:
    bad = []
    for path, command in tree:
        if not isinstance(command, click.Group):
            continue
        ctx = click.Context(command, info_name=path[-1])
        subs = command.list_commands(ctx)
        # the summary `coord --help` prints, and the group's own first line
        summaries = {"coord --help": COMMANDS[path[0]][1]} if len(path) == 1 else {}
        summaries[f"coord {' '.join(path)} --help"] = command.get_short_help_str(limit=10_000)
        for where, text in summaries.items():
            left = [s for s in subs if not re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text)]
            if left:
                bad.append(f"{where}: the summary of `coord {' '.join(path)}` ({text!r}) "
                           f"does not name {', '.join(left)}")
    assert not bad, "\n".join(bad)


def test_the_root_help_says_what_a_worker_serves() -> None:
    r = CliRunner().invoke(cli, ["--help"], prog_name="coord")
    assert r.exit_code == 0
    assert "one or more repos" in r.output and "for one repo." not in r.output


def test_the_ui_help_names_the_change_pages_and_what_it_writes() -> None:
    """The view serves /changes and /changes/PLAN and approves gates: not "read-only"."""
    r = CliRunner().invoke(cli, ["ui", "--help"], prog_name="coord")
    assert r.exit_code == 0, r.output
    assert "/changes" in r.output and "/changes/PLAN" in r.output
    assert "read-only" not in r.output and "approves or" in r.output
    r = CliRunner().invoke(cli, ["--help"], prog_name="coord")
    assert "read-only web view" not in r.output and "changes" in r.output


def _newest_released() -> str:
    """The newest released heading of CHANGELOG.md (`## [X.Y.Z] - DATE`; Keep a
    Changelog, whose format tests/unit/test_changelog.py checks)."""
    log = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - ", log, re.M)
    assert released, "the changelog has no released entry"
    return released[0]


def test_the_version_comes_from_one_place() -> None:
    """pyproject.toml declares it; the installed metadata carries it; `coord --version`
    prints the metadata's; the changelog's newest released entry is it."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == _newest_released(), (
        f"pyproject.toml says {declared}, the changelog's newest released entry is "
        f"{_newest_released()}: release both or neither")
    installed = version("coord")
    assert installed == declared, (
        f"the installed metadata says {installed}, pyproject.toml {declared}: reinstall "
        "(`pip install -e .`; make does it when pyproject.toml changes)")
    r = CliRunner().invoke(cli, ["--version"], prog_name="coord")
    assert r.exit_code == 0, r.output
    assert r.output.split()[-1] == installed, r.output


def test_a_one_todo_sweep_names_its_todo() -> None:
    from coordination.cli.sweep_render import subject

    def doc(sweep_id: str, plan: str | None, todos: list[str]) -> Any:
        return {"sweep_id": sweep_id, "plan": plan, "todos": dict.fromkeys(todos, {})}

    assert subject(doc("TODO-007-20261123203742-5455", "", ["TODO-007"])) == "TODO-007"
    assert subject(doc("TODO-002-20261123203736-62d7", "PLAN-001", ["TODO-002"])) == \
        "TODO-002 (PLAN-001)"
    assert subject(doc("PLAN-001-20261123203736-62d7", "PLAN-001", ["TODO-002"])) == "PLAN-001"


def test_the_readme_after_demo_commands_show_something(tmp_path: Path) -> None:
    """The README's "After `make demo`, try" commands, on the catalog as the demo leaves
    it (every todo of PLAN-001 completed): each prints the plan's todos."""
    from coordination.catalog.manager import CoordinationManager

    catalog = tmp_path / "ecosystem.yaml"
    catalog.write_bytes((ROOT / "ecosystem.yaml").read_bytes())
    m = CoordinationManager(catalog)
    for t in m.reads.plan_todos("PLAN-001"):
        m.todos.complete(t.id)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("After `make demo`, try"):].split("\n\n")[1]
    prefix = ".venv/bin/coord --file .coord-demo/ecosystem.yaml "
    commands = [line.strip()[len(prefix):].split() for line in block.splitlines()]
    assert len(commands) >= 3 and block.count(prefix) == len(commands), block
    runner = CliRunner()
    for args in commands:
        if args[:2] == ["sweep", "list"]:
            continue  # needs the demo's sweeps; the others read the catalog
        r = runner.invoke(cli, ["--file", str(catalog), *args], prog_name="coord")
        assert r.exit_code == 0, (args, r.output)
        assert "TODO-005" in r.output or "5/5" in r.output, (args, r.output)
        assert "(empty)" not in r.output and "critical path (0h)" not in r.output, (args, r.output)


def test_an_example_continued_on_the_next_line_stays_on_two_lines(
        tree: list[tuple[tuple[str, ...], click.Command]]) -> None:
    """A docstring's ``\\`` at a line's end, written unescaped, joins the next line onto
    it (``--deps follow           --plan PLAN-002``, issue #61): every example line
    that goes on shows its ``\\`` and ends there."""
    runner = CliRunner()
    joined = []
    for path, _command in tree:
        out = runner.invoke(cli, [*path, "--help"], prog_name="coord").output
        example = re.split(r"^\s*Examples?:\s*$", out, maxsplit=1, flags=re.M)
        lines = (example[1] if len(example) > 1 else "").strip("\n").splitlines()
        assert lines or len(example) == 1, f"coord {' '.join(path)}: an empty Example:"
        for line in lines:
            if not line.strip() or not line.startswith("  "):
                break  # the examples end at the options
            # an example's own text never holds a run of spaces but before a # comment
            code = line.strip().split("  #", 1)[0]
            if re.search(r"\S {4,}\S", code):
                joined.append(f"coord {' '.join(path)}: {line.strip()!r}")
    assert not joined, "example lines joined by an unescaped '\\' at a line's end:\n" + \
        "\n".join(joined)
