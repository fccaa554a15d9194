"""The README's "Using coord on your own repos" works as written (issue #29, item 10d):
its catalog and its commands, run on two fresh git repos in a temp directory,
embedded. The section is read from README.md, so it cannot drift from what is tested."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[3]
TITLE = "## Using coord on your own repos"


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert TITLE in text, f"README.md has no {TITLE!r} section"
    body = text.split(TITLE, 1)[1]
    return body.split("\n## ", 1)[0]


def fenced(body: str, lang: str) -> str:
    blocks = re.findall(rf"^```{lang}\n(.*?)^```$", body, flags=re.M | re.S)
    assert len(blocks) == 1, f"want one ```{lang} block in the section, got {len(blocks)}"
    return str(blocks[0])


def git_repo(path: Path) -> None:
    """A small repository whose `make test` leaves a mark, committed."""
    path.mkdir(parents=True)
    (path / "Makefile").write_text(f"test:\n\techo {path.name} > .tested\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    for argv in (["git", "init", "-q"], ["git", "add", "Makefile"],
                 ["git", "commit", "-q", "-m", "init"]):
        subprocess.run(argv, cwd=path, env=env, check=True, capture_output=True, timeout=30)


def test_the_own_repos_section_runs_as_written(tmp_path: Path) -> None:
    body = section()
    src = tmp_path / "src"
    src.mkdir()
    catalog = yaml.safe_load(fenced(body, "yaml"))
    (src / "ecosystem.yaml").write_text(fenced(body, "yaml"))
    for repo in catalog["repos"]:
        git_repo(src / repo["path"])

    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}  # embedded
    outputs = []
    for line in fenced(body, "sh").splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        assert argv[0] == "coord", line
        r = subprocess.run([sys.executable, "-m", "coordination.cli.main", *argv[1:]],
                           cwd=src, env={**env, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{line}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
        outputs.append((argv, r.stdout))
    assert len(outputs) >= 5, outputs  # create, create, validate, dry run, sweep, ...

    # The todos it created are the ones it names, and each ran in its own checkout.
    created = [out.strip() for argv, out in outputs if argv[1:3] == ["todo", "create"]]
    assert created == ["TODO-001", "TODO-002"], created
    for repo in catalog["repos"]:
        assert (src / repo["path"] / ".tested").read_text().strip() == repo["name"]
    r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "plan", "status",
                        "PLAN-001", "--json"], cwd=src, env={**env, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=60)
    doc = json.loads(r.stdout)
    assert doc["complete"] is True and doc["todos"]["completed"] == 2, doc
