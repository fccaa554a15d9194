"""The tutorials' examples as a script: what tests/integration/test_docs_examples.py runs.

A tutorial (``docs/tutorials/*.md``) holds three kinds of fenced blocks:

- ```` ```yaml title="PATH" ````: a file the reader writes; written to PATH (relative to
  the directory the commands before it moved to) at that point of the script;
- ```` ```sh ````: commands the reader runs; run, in order, in one bash (``set -e``), so
  a renamed command or flag, or an example that stopped working, fails the test;
- ```` ```text ````: what a command prints; shown, not run.

Any other shell-looking block (``bash``, ``console``, ``shell``, an indented ``coord``
line) is refused by :func:`problems`: every shell example of a tutorial is run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"

_FENCE = re.compile(r"^```(\w*)(.*)$")
_TITLE = re.compile(r'title="([^"]+)"')


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    text: str
    line: int  # 1-based line of the opening fence


def blocks(page: Path) -> list[Block]:
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m.group(1)
        t = _TITLE.search(m.group(2))
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        out.append(Block(lang, t.group(1) if t else None, "\n".join(body) + "\n", start + 1))
        i += 1
    return out


def problems(page: Path) -> list[str]:
    """Shell examples of ``page`` that would not be run."""
    bad = []
    for b in blocks(page):
        if b.lang in ("bash", "console", "shell", "shell-session", "zsh", ""):
            bad.append(f"{page.name}:{b.line}: a ```{b.lang} block is not run: write ```sh "
                       "(run by the test) or ```text (output)")
        if b.lang == "yaml" and b.title is None:
            bad.append(f"{page.name}:{b.line}: a ```yaml block without title=\"PATH\" is not "
                       "written anywhere: give it the file it is")
    fenced = False
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^    +(coord|\$|make|git) ", line):
            bad.append(f"{page.name}:{n}: an indented command is not run: put it in a ```sh block")
    return bad


def script(page: Path) -> str:
    """``page``'s files and commands as one bash script (run from the tutorial's directory)."""
    parts = ["set -euo pipefail", f"# {page.name}"]
    for b in blocks(page):
        if b.lang == "yaml" and b.title:
            marker = "COORD_DOCS_EOF"
            parts.append(f"mkdir -p \"$(dirname {shlex.quote(b.title)})\"\n"
                         f"cat > {shlex.quote(b.title)} <<'{marker}'\n{b.text}{marker}")
        elif b.lang == "sh":
            parts.append(f"# {page.name}:{b.line}\n{b.text}")
    return "\n".join(parts) + "\n"
