"""Copy the manifests of real repositories into ``bench/fleet_manifests/`` (issue #61):
the checkouts ``bench/fleet_init.py`` makes are copies of these, so that each holds what
a real one holds (workspaces, examples, nested modules, several requirement files), not
one small generated manifest.

Given git directories of public repositories (a clone, or a bare mirror), each named
``OWNER+NAME`` (or ending in ``OWNER+NAME/repo``), it copies from their HEAD every file
named like a manifest of an ecosystem coord reads, with its path (``node_modules``
left out), the top-level ``.gitignore`` as ``gitignore`` (so that it ignores nothing
here), and the repository's directories down to 5 levels in ``dirs.json`` (the walk
below a checkout and Go's nested modules look through them); then writes ``NOTE.md``:
each repository, its commit and date.

    .venv/bin/python bench/_gather_manifests.py /work/.mirror/encode+httpx/repo ...

Not run by the bench: its output is kept in the tree.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "fleet_manifests"
MANIFEST = re.compile(r"(^|/)(pyproject\.toml|setup\.cfg|setup\.py|requirements[^/]*\.txt|"
                      r"package\.json|pnpm-workspace\.yaml|go\.mod|go\.work|Cargo\.toml|"
                      r"pom\.xml)$")
MAX_DEPTH = 5


def git(gitdir: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True,
                          capture_output=True, text=True).stdout


def name_of(path: Path) -> str:
    parts = [p for p in path.parts if "+" in p]
    if not parts:
        sys.exit(f"{path}: no OWNER+NAME in its path")
    return parts[-1]


def gitdir_of(path: Path) -> Path:
    return path / ".git" if (path / ".git").exists() else path


def gather(path: Path) -> tuple[str, str, str, list[str]]:
    name, gitdir = name_of(path), gitdir_of(path)
    commit, date = git(gitdir, "log", "-1", "--format=%H %cs", "HEAD").split()
    files = [f for f in git(gitdir, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
             if MANIFEST.search(f) and "node_modules/" not in f]
    dest = OUT / name
    shutil.rmtree(dest, ignore_errors=True)
    for f in [*files, ".gitignore"]:
        try:
            data = subprocess.run(["git", "--git-dir", str(gitdir), "show", f"HEAD:{f}"],
                                  check=True, capture_output=True).stdout
        except subprocess.CalledProcessError:
            continue  # no top-level .gitignore
        target = dest / ("gitignore" if f == ".gitignore" else f)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    dirs = [d for d in git(gitdir, "ls-tree", "-r", "-d", "--name-only", "HEAD").splitlines()
            if d.count("/") < MAX_DEPTH and "node_modules" not in d.split("/")]
    return name, commit, date, dirs


def main() -> None:
    OUT.mkdir(exist_ok=True)
    done = [gather(Path(p)) for p in sys.argv[1:]]
    (OUT / "dirs.json").write_text(json.dumps({n: d for n, _, _, d in done}, indent=0,
                                              sort_keys=True) + "\n")
    rows = "".join(f"| {n.replace('+', '/')} | `{c}` | {d} |\n" for n, c, d, _ in
                   sorted(done))
    (OUT / "NOTE.md").write_text(
        "# Real manifests for bench/fleet_init.py\n\n"
        "Copied by `bench/_gather_manifests.py` from each public repository's default\n"
        "branch at the commit below: every file named like a manifest coord reads, at its\n"
        "path (`node_modules` left out), the top-level `.gitignore` as `gitignore`, and\n"
        "the repository's directories down to 5 levels in `dirs.json`. Each keeps its\n"
        "project's license (MIT, Apache-2.0 or BSD); they are data for the benchmark, read\n"
        "as coord reads a checkout, never built or run.\n\n"
        "| repository | commit | date |\n|---|---|---|\n" + rows)


if __name__ == "__main__":
    main()
