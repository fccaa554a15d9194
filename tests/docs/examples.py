"""The tutorials' examples as a script: what tests/integration/test_docs_examples.py runs.

A page is read with a Markdown parser (markdown-it, CommonMark), so a code block is
found wherever it is: at the top level, in a list item or a quote, fenced with ```` ``` ````
or ``~~~``, or indented. A tutorial (``docs/tutorials/*.md``) holds three kinds of
blocks, and nothing else (:func:`problems` names any other):

- ```` ```yaml title="PATH" ````: a file the reader writes; written to PATH (relative to
  the directory the commands before it moved to) at that point of the script. After an
  ``<!-- append -->`` comment, it is added at the end of PATH instead;
- ```` ```sh ````: commands the reader runs; run, in order, in one bash (``set -e``), so
  a renamed command or flag, or an example that stopped working, fails the test. A
  command expected to fail says which exit status it ends with, by a comment at the end
  of its line: ``coord plan sweep PLAN-001 --wait  # exit 1: ...``; the script checks
  it (any other status fails the test, 0 included). ``|| echo`` and ``|| true``, which
  would hide the status, are refused;
- ```` ```text ```` after an ``<!-- output -->`` comment: what the last command of the
  ```` ```sh ```` block just before it prints (stdout and stderr, as a terminal shows
  them), compared with what it prints in the test once the parts that differ from run
  to run are replaced on both sides (:data:`PLACEHOLDERS`: sweep ids, clock times,
  durations, worker names, the home directory). Blank-padded columns are compared to the
  blank; after ``<!-- output: columns -->`` (a table whose widths follow its contents:
  a worker's name) cell by cell instead.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"

_TITLE = re.compile(r'title="([^"]+)"')
_MARKER = re.compile(r"^<!--\s*(output(?::\s*columns)?|append)\s*-->\s*$")
#: ``# exit N`` (optionally ``: why``) ending a command's line: the status it ends with.
EXIT = re.compile(r"\s#\s*exit\s+(\d+)\b(?::.*)?$")
#: What hides a command's exit status from the script.
#: A quoted word (what a command hands on, e.g. a todo's command: not this shell's).
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
_HIDDEN_STATUS = re.compile(r"\|\|\s*(echo|true|:)(?![\w-])")


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    text: str
    line: int  # 1-based line of the block's first line (a fence's opening line)
    fenced: bool = True  # False: an indented code block
    marker: str | None = None  # "output", "output: columns" or "append", from a comment before it


def blocks(page: Path | str, text: str | None = None) -> list[Block]:
    """Every code block of ``page``, in order, wherever it is (list items, quotes, any
    fence, indented); ``text``: the page's text, when given."""
    source = Path(page).read_text(encoding="utf-8") if text is None else text
    out: list[Block] = []
    before = None  # the token before this one: a marker comment, right before its block
    for tok in MarkdownIt("commonmark").parse(source):
        if tok.type in ("fence", "code_block"):
            info = tok.info.strip() if tok.type == "fence" else ""
            lang = info.split(None, 1)[0] if info else ""
            t = _TITLE.search(info)
            m = (_MARKER.match(before.content.strip())
                 if before is not None and before.type == "html_block" else None)
            out.append(Block(lang, t.group(1) if t else None, tok.content,
                             tok.map[0] + 1 if tok.map else 0, tok.type == "fence",
                             " ".join(m.group(1).split()) if m else None))
        before = tok
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """The commands of a ```sh block: (0-based first line, text), a line ending with
    ``\\`` joined with the next; blank lines and comment lines left out."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, parts = i, [lines[i]]
        while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            parts.append(lines[i])
        i += 1
        joined = "\n".join(parts)
        if joined.strip() and not joined.lstrip().startswith("#"):
            out.append((start, joined))
    return out


def expected_exit(command: str) -> int:
    """The exit status ``command`` (one logical line) says it ends with: 0 unless it
    ends with ``# exit N``."""
    m = EXIT.search(command.splitlines()[-1])
    return int(m.group(1)) if m else 0


def problems(page: Path, text: str | None = None) -> list[str]:
    """What of ``page`` the test would not run, write or compare, or could not check."""
    bad = []
    found = blocks(page, text)
    name = Path(page).name
    for k, b in enumerate(found):
        where = f"{name}:{b.line}"
        if not b.fenced:
            bad.append(f"{where}: an indented code block is neither run nor compared: fence "
                       "it as ```sh (run by the test) or ```text after <!-- output --> (what "
                       "the command before it prints)")
            continue
        if b.lang not in ("sh", "text", "yaml"):
            bad.append(f"{where}: a ```{b.lang} block is not run: write ```sh (run by the "
                       "test) or ```text after <!-- output --> (output)")
        if b.lang == "yaml" and b.title is None:
            bad.append(f"{where}: a ```yaml block without title=\"PATH\" is not written "
                       "anywhere: give it the file it is")
        if b.marker == "append" and b.lang != "yaml":
            bad.append(f"{where}: <!-- append --> is for a ```yaml title=\"PATH\" block")
        if b.lang == "text":
            if not (b.marker or "").startswith("output"):
                bad.append(f"{where}: a ```text block is compared with nothing: put "
                           "<!-- output --> before it (what the command before it prints)")
            elif k == 0 or found[k - 1].lang != "sh":
                bad.append(f"{where}: an output block follows no ```sh block: put it right "
                           "after the block whose last command prints it")
        if b.lang == "sh":
            for n, command in _logical_lines(b.text):
                if _HIDDEN_STATUS.search(_QUOTED.sub("''", command)):
                    bad.append(f"{name}:{b.line + 1 + n}: '||' hides the exit status: end the "
                               "line with '# exit N' (the status it ends with) instead")
    return bad


@dataclass(frozen=True)
class Output:
    """An output block and where the script writes what its command printed."""

    page: str
    line: int
    expected: str
    columns: bool
    file: str  # relative to the script's output directory


def outputs(page: Path, text: str | None = None) -> list[Output]:
    """``page``'s output blocks (each compared with its command's output)."""
    return [Output(page.name, b.line, b.text, b.marker == "output: columns",
                   f"{page.stem}-{b.line}.out")
            for b in blocks(page, text) if b.lang == "text" and (b.marker or "").startswith("output")]


def _run(command: str, where: str, capture: str | None) -> str:
    """``command`` as the script runs it: its exit status checked against ``# exit N``,
    its output also written to ``capture`` (in ``$COORD_DOCS_OUT``)."""
    want = expected_exit(command)
    if want == 0 and capture is None:
        return command
    to = f' >"$COORD_DOCS_OUT"/{shlex.quote(capture)} 2>&1' if capture else ""
    shown = f'cat "$COORD_DOCS_OUT"/{shlex.quote(capture)}\n' if capture else ""
    said = shlex.quote(f"{where}: the page says this command ends with exit {want}, it "
                       "ended with exit ")
    return (f"set +e\n{{\n{command}\n}}{to}\ncoord_docs_rc=$?\nset -e\n{shown}"
            f'if [ "$coord_docs_rc" -ne {want} ]; then echo {said}"$coord_docs_rc" >&2; '
            "exit 1; fi")


def script(page: Path, text: str | None = None) -> str:
    """``page``'s files and commands as one bash script (run from the tutorial's directory,
    with ``$COORD_DOCS_OUT`` the directory the output blocks' commands write to)."""
    parts = ["set -euo pipefail", f"# {page.name}"]
    found = blocks(page, text)
    for k, b in enumerate(found):
        if b.lang == "yaml" and b.title:
            marker = "COORD_DOCS_EOF"
            op = ">>" if b.marker == "append" else ">"
            parts.append(f"mkdir -p \"$(dirname {shlex.quote(b.title)})\"\n"
                         f"cat {op} {shlex.quote(b.title)} <<'{marker}'\n{b.text}{marker}")
        elif b.lang == "sh":
            nxt = found[k + 1] if k + 1 < len(found) else None
            capture = (f"{page.stem}-{nxt.line}.out" if nxt is not None and nxt.lang == "text"
                       and (nxt.marker or "").startswith("output") else None)
            commands = _logical_lines(b.text)
            lines = b.text.splitlines()
            out, done = [f"# {page.name}:{b.line}"], 0
            for j, (n, command) in enumerate(commands):
                out += lines[done:n]
                last = j == len(commands) - 1
                out.append(_run(command, f"{page.name}:{b.line + 1 + n}",
                                capture if last else None))
                done = n + len(command.splitlines())
            out += lines[done:]
            parts.append("\n".join(out))
    return "\n".join(parts) + "\n"


#: What differs from run to run in a command's output, and what stands for it (on both
#: sides of a comparison), in order.
PLACEHOLDERS: list[tuple[re.Pattern[str], str]] = [
    # a sweep's id: PLAN-001-20261125050628-c3bb, run-20261125050628-c3bb
    (re.compile(r"\b[A-Za-z]+(?:-\d+)?-\d{14}-[0-9a-f]{4}\b"), "<SWEEP>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"),
     "<DATETIME>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:\.\d+)?\b"), "<TIME>"),
    # a worker: embedded@HOST:PID, NAME-PID@HOST
    (re.compile(r"\b[\w.-]+@[\w.-]+:\d+\b"), "<WORKER>"),
    (re.compile(r"\b[\w.-]+-\d+@[\w.-]+\b"), "<WORKER>"),
    (re.compile(r"\b(duration|paused_for|waiting_for|queued_for)=\d+(?:\.\d+)?"), r"\1=<SECONDS>"),
    (re.compile(r"\b[0-9a-f]{40}\b"), "<SHA>"),
    (re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])"), "<DECIMAL>"),  # seconds, in a table
    (re.compile(r"\b[0-9a-f]{7,12}\b(?=\s)"), "<SHORT-SHA>"),
]


def normalised(text: str, home: str | None = None, columns: bool = False) -> list[str]:
    """``text``'s lines with :data:`PLACEHOLDERS` put in (and ``home``, the directory
    ``~`` stands for, written ``~``), trailing blanks and blank last lines dropped; with
    ``columns``, each line's cells (split at two blanks or more) joined by `` | ``."""
    if home:
        text = text.replace(home.rstrip("/"), "~")
    for pattern, stand_in in PLACEHOLDERS:
        text = pattern.sub(stand_in, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if columns:
        lines = [" | ".join(re.split(r"\s{2,}", line.strip())) for line in lines]
    return lines


def compare(expected: str, actual: str, *, home: str | None = None,
            columns: bool = False) -> list[str]:
    """The differences between an output block and what its command printed (a
    unified diff of their normalised lines; none when they agree)."""
    want = normalised(expected, home, columns)
    got = normalised(actual, home, columns)
    if want == got:
        return []
    return list(difflib.unified_diff(want, got, "the page", "the command", lineterm=""))
