"""Names, paths and command output reach the terminal escaped (#49 item 6): no raw
control character (ANSI escapes, CR, bidi overrides), no newline inside a table cell,
(newlines in a cell are spaces), no Rich markup or ``:emoji:`` code interpreted - in tables (plain and Rich layouts),
fields, messages, a todo's output lines and errors; `todo list` and `coord init` on a
directory named so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.cli import render
from coordination.cli.main import cli
from tests.unit.support.catalogs import catalog_data
from tests.unit.support.cli import write_yaml

pytestmark = pytest.mark.timeout(120)

HOSTILE = "\x1b[31mred\x1b[0m[bold]b:x:\nnext\r\u202eevil"


def assert_clean(out: str) -> None:
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out, repr(out)
    assert "\u274c" not in out, "`:x:` became an emoji"  # ❌
    assert "\\x1b[31mred" in out, repr(out)


@pytest.fixture(params=["log", "terminal"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "terminal":
        monkeypatch.setenv("COLUMNS", "300")
        monkeypatch.setattr(render, "is_terminal", lambda stream: True)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
        monkeypatch.setattr(render, "is_terminal", lambda stream: False)
    monkeypatch.setattr(render, "_console", None)
    return str(request.param)


def test_clean_shows_control_characters() -> None:
    assert render.clean(HOSTILE) == ("\\x1b[31mred\\x1b[0m[bold]b:x: next\\r\\u202eevil")
    assert render.clean("a\nb\tc\x1b", lines=True) == "a\nb\tc\\x1b"


def test_every_cell_field_message_and_output_line_is_clean(
        layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    render.table("t " + HOSTILE, ["name", "status"], [(render.esc(HOSTILE), "ok")])
    out = capsys.readouterr().out
    assert_clean(out)
    assert "[bold]b:x:" in out  # escaped by its caller: shown, not applied
    row = [ln for ln in out.splitlines() if "red" in ln and "t " not in ln]
    assert len(row) == 1 and "b:x: next" in row[0], out  # the cell stayed on one line
    render.fields("f", [("path", render.esc(HOSTILE))])
    render.say(f"message {render.esc(HOSTILE)}")
    render.output_lines("[bold]output[/bold]", [("stdout", [HOSTILE])])
    render.err_console().print(f"err {render.esc(HOSTILE)}")
    got = capsys.readouterr()
    assert_clean(got.out)
    assert_clean(got.err)
    assert ":x:" in got.out and ":x:" in got.err


def test_todo_list_and_show_of_a_hostile_task(layout: str, tmp_path: Path) -> None:
    data = catalog_data(2, [], overrides={1: {"task": HOSTILE}})
    eco = write_yaml(tmp_path, data)
    tid = data["coordination"]["todos"][1]["id"]
    for args in (["todo", "list"], ["todo", "show", tid]):
        r = CliRunner().invoke(cli, ["--file", str(eco), *args])
        assert r.exit_code == 0, r.output
        assert_clean(r.output)
        assert "[bold]b:x:" in r.output


def test_init_on_a_directory_named_with_escapes(layout: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    d = fleet / "svc\x1b[31m[bold]:x:\nx"
    d.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True)
    (d / "package.json").write_text('{"name": "svc"}\n')
    r = CliRunner().invoke(cli, ["--file", str(tmp_path / "ecosystem.yaml"), "init",
                                 str(fleet)])
    out = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert "\x1b" not in out and "\u274c" not in out, repr(out)
    assert "\\x1b[31m" in out, repr(out)
