"""Verify todos test the candidates together (#50): a consumer's verify todo imports its
providers' candidate code, with nothing in its command to say so, ahead of the editable
installs of the providers' main checkouts a shared environment has.

On real git (bare remotes), a real redis-server and a real `coord worker`. Python: two
libraries, one in a src layout and one flat, installed editable into one throwaway venv
as setuptools (>= 64) installs them: the src layout as a ``.pth`` path entry, the flat one
as a meta-path finder (``setuptools.command.editable_wheel``'s own templates, the files
``pip install -e`` writes; pip itself needs ``wheel``, which an offline test cannot count
on). Go: two modules, the consumer's ``go.mod`` replacing the provider by its main
checkout. In each, the consumer's candidate calls a function only the provider's
candidate has: its verify todo passes; on 0.4 it failed (no such function).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import edits_catalog_lines, git, json_str, make_repos
from tests.integration.helpers import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PLAN = "PLAN-001"


def publish(root: Path, name: str, files: dict[str, str]) -> None:
    """``files`` committed on ``name``'s remote main, and pulled into its checkout."""
    other = root / "others" / name
    git(root, "clone", "--quiet", str(root / "remotes" / f"{name}.git"), str(other))
    for rel, text in files.items():
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        (other / rel).write_text(textwrap.dedent(text))
    git(other, "add", "-A")
    git(other, "commit", "--quiet", "-m", f"{name} as it is")
    git(other, "push", "--quiet", "origin", "HEAD:main")
    git(root / "checkouts" / name, "pull", "--quiet", "--ff-only")


def catalog(c: Cluster, names: list[str], edits: dict[str, str], verify: str,
            consumer: str) -> None:
    lines, ids = edits_catalog_lines(names, "together", edits, PLAN)
    lines.append(f"    - {{id: TODO-100, task: verify, repo: {consumer}, plan: {PLAN}, "
                 f"verify: true, run: {json_str(verify)}, blocked_by: [{', '.join(ids)}]}}")
    lines.append("  dependencies:")
    lines += [f"    - {{id: DEP-{i + 1:03d}, consumer: {consumer}, provider: {n}}}"
              for i, n in enumerate(names) if n != consumer]
    c.eco.write_text("\n".join(lines) + "\n")


def swept(c: Cluster, names: list[str]) -> dict[str, Any]:
    c.start_worker(names[0], extra=[a for n in names[1:] for a in ("--repo", n)])
    res = c.cli("plan", "sweep", PLAN, "--wait", "--json", timeout=180)
    doc: dict[str, Any] = c.cli_json("change", "status", PLAN)
    assert res.returncode == 0, (res.stderr[-3000:], doc.get("verify"), c.log_tails())
    return doc


def editable_venv(root: Path, src_checkout: Path, flat_checkout: Path) -> Path:
    """A throwaway venv (the system's site-packages seen, nothing installed into them)
    with libsrc and libflat installed editable from their main checkouts, as setuptools
    does it; its python."""
    editable = pytest.importorskip("setuptools.command.editable_wheel")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # src layout: the lenient mode's static .pth (a path entry, appended by site)
    (site / "__editable__.libsrc-0.1.pth").write_text(f"{src_checkout / 'src'}\n")
    # flat layout: the meta-path finder (its install() appends it to sys.meta_path)
    finder = "__editable___libflat_0_1_finder"
    (site / f"{finder}.py").write_text(editable._finder_template(
        finder, {"libflat": str(flat_checkout / "libflat")}, {}))
    (site / "__editable__.libflat-0.1.pth").write_text(f"import {finder}; {finder}.install()\n")
    return python


PYPROJECT = """\
    [build-system]
    requires = ["setuptools>=64"]
    build-backend = "setuptools.build_meta"
    [project]
    name = "{name}"
    version = "0.1"
    """


def test_a_python_verify_todo_imports_the_providers_candidates_not_the_venvs_installs(
        cluster: Cluster) -> None:
    c = cluster
    names = ["libsrc", "libflat", "app"]
    make_repos(c.root, names)
    publish(c.root, "libsrc", {"pyproject.toml": PYPROJECT.format(name="libsrc"),
                               "src/libsrc/__init__.py": "def old():\n    return 1\n"})
    publish(c.root, "libflat", {"pyproject.toml": PYPROJECT.format(name="libflat"),
                                "libflat/__init__.py": "def old():\n    return 1\n",
                                "tests/__init__.py": ""})
    publish(c.root, "app", {"pyproject.toml": PYPROJECT.format(name="app"),
                            "app.py": "import libsrc, libflat\n"})
    python = editable_venv(c.root, c.root / "checkouts" / "libsrc",
                           c.root / "checkouts" / "libflat")
    probe = "import libsrc, libflat; print(libsrc.__file__, libflat.__file__)"
    mains = subprocess.run([str(python), "-c", probe], cwd=c.root, check=True,
                           capture_output=True, text=True).stdout.split()
    assert mains == [str(c.root / "checkouts/libsrc/src/libsrc/__init__.py"),
                     str(c.root / "checkouts/libflat/libflat/__init__.py")]

    seen = c.root / "seen.json"
    edits = {
        "libsrc": "printf 'def new():\\n    return \"src\"\\n' >> src/libsrc/__init__.py",
        "libflat": "printf 'def new():\\n    return \"flat\"\\n' >> libflat/__init__.py",
        "app": "printf 'def main():\\n    return libsrc.new() + libflat.new()\\n' >> app.py",
    }
    check = (f"{python} -c 'import json, os, app, libsrc, libflat; "
             f"json.dump({{\"candidates\": json.loads(os.environ[\"COORD_CANDIDATES\"]), "
             f"\"main\": app.main(), \"files\": [libsrc.__file__, libflat.__file__]}}, "
             f"open(\"{seen}\", \"w\"))'")
    assert "PYTHONPATH" not in check
    catalog(c, names, edits, check, "app")
    doc = swept(c, names)

    assert doc["verify"]["TODO-100"]["verdict"] == "passed", doc["verify"]
    got = json.loads(seen.read_text())
    worktrees = {n: r["worktree"] for n, r in doc["repos"].items()}
    assert got["candidates"] == worktrees
    assert got["main"] == "srcflat"  # the candidates' new(), which no main checkout has
    assert got["files"] == [str(Path(worktrees["libsrc"]) / "src/libsrc/__init__.py"),
                            str(Path(worktrees["libflat"]) / "libflat/__init__.py")]
    # nothing shared changed: the venv still imports the main checkouts
    assert subprocess.run([str(python), "-c", probe], cwd=c.root, check=True,
                          capture_output=True, text=True).stdout.split() == mains


def test_a_go_verify_todo_builds_against_the_providers_candidate_through_gowork(
        cluster: Cluster) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not installed here (CI installs golang-go)")
    c = cluster
    names = ["golib", "goapp"]
    make_repos(c.root, names)
    main_lib = c.root / "checkouts" / "golib"
    publish(c.root, "golib", {"go.mod": "module example.com/golib\n\ngo 1.18\n",
                              "lib.go": "package golib\n\nfunc Old() int { return 1 }\n"})
    publish(c.root, "goapp", {
        "go.mod": ("module example.com/goapp\n\ngo 1.18\n\nrequire example.com/golib v0.0.0\n\n"
                   f"replace example.com/golib => {main_lib}\n"),
        "main.go": ('package main\n\nimport (\n\t"fmt"\n\t"example.com/golib"\n)\n\n'
                    "func main() { fmt.Println(golib.Old()) }\n")})
    edits = {
        "golib": "printf '\\nfunc New() int { return 2 }\\n' >> lib.go",
        "goapp": "sed -i 's/golib.Old()/golib.New()/' main.go",
    }
    out = c.root / "go-out.txt"
    catalog(c, names, edits, f"GOPROXY=off GOFLAGS= go run . > {out}", "goapp")
    doc = swept(c, names)
    assert doc["verify"]["TODO-100"]["verdict"] == "passed", doc["verify"]
    assert out.read_text().strip() == "2"  # the candidate's New()
    assert "New" not in (main_lib / "lib.go").read_text()
