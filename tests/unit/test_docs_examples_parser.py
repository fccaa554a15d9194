"""How the tutorials' examples are read and run (tests/docs/examples.py), on small pages.

The tutorials themselves run in tests/integration/test_docs_examples.py; here, each way
an example could escape the test is shown to be caught: a block inside a list item, a
``~~~`` fence, an indented block, a status hidden by ``|| echo``, a ``# exit N`` that
does not hold, an output block that drifted from what its command prints.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.docs.examples import (
    TUTORIALS,
    blocks,
    compare,
    expected_exit,
    outputs,
    problems,
    script,
)

pytestmark = pytest.mark.timeout(30)

PAGES = sorted(TUTORIALS.glob("*.md"))
FENCE = "```"


def run(tmp_path: Path, page: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The page's script, run by bash in ``tmp_path``; its result and output directory."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "COORD_DOCS_OUT": str(out)}
    r = subprocess.run(["bash", "-c", script(Path("t.md"), page)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=20)
    return r, out


def test_there_are_tutorials() -> None:
    assert len(PAGES) >= 5, PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_example_of_every_tutorial_is_run_or_compared(page: Path) -> None:
    assert problems(page) == []


def test_the_tutorials_compare_outputs() -> None:
    assert sum(len(outputs(p)) for p in PAGES) >= 4


def test_a_block_in_a_list_item_is_found_and_run(tmp_path: Path) -> None:
    page = f"# T\n\n1. Make it:\n\n   {FENCE}sh\n   echo in-a-list > made\n   {FENCE}\n"
    assert [(b.lang, b.text) for b in blocks("t.md", page)] == [("sh", "echo in-a-list > made\n")]
    r, _ = run(tmp_path, page)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "made").read_text() == "in-a-list\n"


def test_a_tilde_fence_is_found_and_run(tmp_path: Path) -> None:
    page = "# T\n\n~~~sh\nexit 7\n~~~\n"
    assert [b.lang for b in blocks("t.md", page)] == ["sh"]
    r, _ = run(tmp_path, page)
    assert r.returncode == 7  # run, and its failure fails the script


@pytest.mark.parametrize("command", ["coord todo list", "redis-cli -s x ping", "ls -l"])
def test_an_indented_block_is_refused_whatever_it_holds(command: str) -> None:
    page = f"# T\n\nRun:\n\n    {command}\n"
    assert [b.fenced for b in blocks("t.md", page)] == [False]
    assert any("indented code block" in p for p in problems(Path("t.md"), page))


@pytest.mark.parametrize("lang", ["bash", "console", "shell", "", "python"])
def test_a_block_of_another_language_is_refused(lang: str) -> None:
    page = f"# T\n\n{FENCE}{lang}\nls\n{FENCE}\n"
    assert any("is not run" in p for p in problems(Path("t.md"), page))


@pytest.mark.parametrize("line", ['coord init --check || echo "exit $?: it moved"',
                                  "coord init --check || true", "false || :"])
def test_a_hidden_exit_status_is_refused(line: str) -> None:
    page = f"# T\n\n{FENCE}sh\n{line}\n{FENCE}\n"
    assert any("hides the exit status" in p for p in problems(Path("t.md"), page))


def test_a_quoted_or_in_a_command_handed_on_is_not_this_shells() -> None:
    page = f"# T\n\n{FENCE}sh\ncoord run 'grep -H v f || echo none' --repos x\n{FENCE}\n"
    assert problems(Path("t.md"), page) == []


def test_exit_n_is_read_from_the_end_of_the_line() -> None:
    assert expected_exit("coord plan sweep P --wait  # exit 1: it fails") == 1
    assert expected_exit("coord init --check   # exit 3") == 3
    assert expected_exit("coord plan sweep P --wait  # exits when done") == 0
    assert expected_exit("echo '# exit 1 is what it says'") == 0


def test_a_command_ending_with_the_status_it_says_goes_on(tmp_path: Path) -> None:
    r, _ = run(tmp_path, f"{FENCE}sh\nsh -c 'exit 3'   # exit 3: it fails\necho after > after\n"
                         f"{FENCE}\n")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "after").is_file()


@pytest.mark.parametrize("command", ["true   # exit 1: it fails", "sh -c 'exit 2'  # exit 1"])
def test_a_command_ending_otherwise_than_it_says_fails_the_script(tmp_path: Path,
                                                                  command: str) -> None:
    r, _ = run(tmp_path, f"{FENCE}sh\n{command}\necho after > after\n{FENCE}\n")
    assert r.returncode == 1
    assert "t.md:2: the page says this command ends with exit 1" in r.stderr
    assert not (tmp_path / "after").exists()


def test_a_text_block_must_be_an_output_after_a_command() -> None:
    unmarked = f"# T\n\n{FENCE}sh\necho hi\n{FENCE}\n\n{FENCE}text\nhi\n{FENCE}\n"
    assert any("compared with nothing" in p for p in problems(Path("t.md"), unmarked))
    orphan = f"# T\n\n<!-- output -->\n{FENCE}text\nhi\n{FENCE}\n"
    assert any("follows no ```sh block" in p for p in problems(Path("t.md"), orphan))
    good = f"# T\n\n{FENCE}sh\necho hi\n{FENCE}\n\n<!-- output -->\n{FENCE}text\nhi\n{FENCE}\n"
    assert problems(Path("t.md"), good) == []


def test_an_output_block_holds_what_the_last_command_printed(tmp_path: Path) -> None:
    page = (f"{FENCE}sh\necho first\nsh -c 'echo out; echo err >&2; exit 4'   # exit 4\n{FENCE}\n\n"
            f"<!-- output -->\n{FENCE}text\nout\nerr\n{FENCE}\n")
    r, out = run(tmp_path, page)
    assert r.returncode == 0, r.stderr
    [o] = outputs(Path("t.md"), page)
    got = (out / o.file).read_text()
    assert got == "out\nerr\n"  # stdout and stderr of that command only
    assert compare(o.expected, got) == []
    assert compare("out\nerror\n", got)  # a drifted block is a difference


def test_placeholders_stand_for_what_changes_from_run_to_run() -> None:
    page = ("12:18:10.955 todo.queued            PLAN-001-20261125121810-8121 TODO-003 "
            "queue=coord.repo.app\n"
            "12:18:10.971 todo.succeeded         PLAN-001-20261125121810-8121 TODO-003 "
            "duration=0.003 worker=embedded@vm:20981\n")
    now = ("09:01:02.003 todo.queued            PLAN-001-20270101090101-ab12 TODO-003 "
           "queue=coord.repo.app\n"
           "09:01:02.107 todo.succeeded         PLAN-001-20270101090101-ab12 TODO-003 "
           "duration=12.5 worker=embedded@ci-runner-7:123456\n")
    assert compare(page, now) == []
    # ...but not for what the command prints otherwise: a column that got wider is a drift
    narrower = page.replace("todo.queued            ", "todo.queued     ")
    assert compare(narrower, now)
    assert compare(page, now.replace("TODO-003 queue", "TODO-004 queue"))


def test_columns_mode_compares_a_table_cell_by_cell() -> None:
    page = ("todo      status     worker             reason\n"
            "TODO-001  succeeded  embedded@vm:20982\n"
            "TODO-002  failed     embedded@vm:20981  exit 1\n")
    now = ("todo      status     worker                       reason\n"
           "TODO-001  succeeded  embedded@ci-runner:1234567\n"
           "TODO-002  failed     embedded@ci-runner:1234568  exit 1\n")
    assert compare(page, now, columns=True) == []
    assert compare(page, now)  # (not whitespace-blind otherwise)
    assert compare(page, now.replace("exit 1", "exit 2"), columns=True)


def test_home_is_written_as_a_tilde(tmp_path: Path) -> None:
    assert compare("catalog ~/coord-tutorial/x/ecosystem.yaml\n",
                   f"catalog {tmp_path}/coord-tutorial/x/ecosystem.yaml\n",
                   home=str(tmp_path)) == []


def test_an_append_block_is_added_to_the_file(tmp_path: Path) -> None:
    page = (f'{FENCE}yaml title="c.yaml"\na: 1\n{FENCE}\n\n<!-- append -->\n'
            f'{FENCE}yaml title="c.yaml"\nb: 2\n{FENCE}\n')
    r, _ = run(tmp_path, page)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.yaml").read_text() == "a: 1\nb: 2\n"


def test_a_yaml_block_without_a_file_is_refused() -> None:
    page = f"# T\n\n{FENCE}yaml\na: 1\n{FENCE}\n"
    assert any("without title" in p for p in problems(Path("t.md"), page))
