"""A verify todo's environment over the change's candidates (coordination.change.candidates):
PYTHONPATH alone loses to two forms an environment may have installed a main checkout in
(a legacy ``setup.py develop``, whose easy-install.pth puts its path at the front of
sys.path, and a finder put at the front of sys.meta_path); the generated sitecustomize
wins over both, and still runs the sitecustomize it shadows. ``go.work`` and the merge
with a todo's own env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coordination.change.candidates import candidate_env, go_modules, over, python_root

pytestmark = pytest.mark.timeout(60)

EGG_PTH = """\
import sys; sys.__plen = len(sys.path)
{path}
import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; p = getattr(sys, '__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)
"""

FRONT_FINDER = """\
import sys
from importlib.machinery import PathFinder


class Front:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return PathFinder.find_spec(name, [{path!r}]) if name == "frontlib" else None


sys.meta_path.insert(0, Front)
"""


def project(root: Path, name: str, *, src: bool, body: str) -> Path:
    (root / "pyproject.toml").parent.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f"[project]\nname = \"{name}\"\n")
    pkg = root / ("src" if src else "") / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(body)
    return root


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A venv with egglib installed `setup.py develop`-style and frontlib by a finder
    first in sys.meta_path, both from "main" checkouts, and a sitecustomize of its own;
    (its python, its site-packages, the root of the mains)."""
    root = tmp_path_factory.mktemp("env")
    v = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(v)], check=True)
    python = v / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True).stdout.strip())
    mains = root / "main"
    project(mains / "egglib", "egglib", src=False, body="WHO = 'main'\n")
    project(mains / "frontlib", "frontlib", src=True, body="WHO = 'main'\n")
    (site / "easy-install.pth").write_text(EGG_PTH.format(path=mains / "egglib"))
    (site / "frontfinder.py").write_text(FRONT_FINDER.format(path=str(mains / "frontlib/src")))
    (site / "front.pth").write_text("import frontfinder\n")
    (site / "sitecustomize.py").write_text("import sys\nsys.venv_sitecustomize_ran = True\n")
    return python, site, mains


def who(python: Path, env: dict[str, str], cwd: Path) -> list[str]:
    code = ("import sys, egglib, frontlib; "
            "print(egglib.WHO, frontlib.WHO, getattr(sys, 'venv_sitecustomize_ran', False))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COORD_"))}
    return subprocess.run([str(python), "-c", code], env={**clean, **env}, cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.split()


def candidates(tmp_path: Path) -> dict[str, str]:
    """Worktrees as a change has them (<dir>/coord-worktrees/<branch>), own repo first."""
    out = {}
    for name, src in (("app", False), ("egglib", False), ("frontlib", True)):
        wt = tmp_path / name / ".git" / "coord-worktrees" / "chg"
        project(wt, name, src=src, body="WHO = 'candidate'\n")
        out[name] = str(wt)
    return out


def test_the_candidates_win_over_a_develop_install_and_a_front_finder(
        venv: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, _site, _ = venv
    cands = candidates(tmp_path)
    env = candidate_env("app", cands)
    assert json.loads(env["COORD_CANDIDATES"]) == cands
    roots = env["COORD_CANDIDATES_PYTHON"].split(os.pathsep)
    assert roots == [cands["app"], cands["egglib"], cands["frontlib"] + "/src"]
    # PYTHONPATH with the roots alone: both main checkouts still win
    assert who(python, {"PYTHONPATH": os.pathsep.join(roots)}, tmp_path) == [
        "main", "main", "True"]
    # the generated sitecustomize first: the candidates, and the venv's own still ran
    assert who(python, over({}, env, {}), tmp_path) == ["candidate", "candidate", "True"]
    shim = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    assert shim == Path(cands["app"]).parent / ".coord-verify" / "python"
    assert (shim / "sitecustomize.py").is_file()


def test_a_flat_providers_tests_package_is_not_taken_for_the_consumers(
        venv: tuple[Path, Path, Path], tmp_path: Path) -> None:
    python, _, _ = venv
    cands = candidates(tmp_path)
    (Path(cands["egglib"]) / "tests").mkdir()
    (Path(cands["egglib"]) / "tests" / "__init__.py").write_text("WHO = 'egglib tests'\n")
    own = tmp_path / "own"
    (own / "tests").mkdir(parents=True)
    (own / "tests" / "__init__.py").write_text("WHO = 'own tests'\n")
    out = subprocess.run([str(python), "-c", "import tests; print(tests.WHO)"],
                         env=over({}, candidate_env("app", cands), {}), cwd=own,
                         check=True, capture_output=True, text=True).stdout.strip()
    assert out == "own tests"


def test_over_puts_the_candidates_ahead_of_the_todos_pythonpath_and_keeps_its_gowork() -> None:
    given = {"PYTHONPATH": "/shim:/cand", "GOWORK": "/gen/go.work", "COORD_CANDIDATES": "{}"}
    assert over({"PYTHONPATH": "/todo"}, given, {"PYTHONPATH": "/worker"})["PYTHONPATH"] \
        == "/shim:/cand:/todo"
    assert over({}, given, {"PYTHONPATH": "/worker"})["PYTHONPATH"] == "/shim:/cand:/worker"
    assert over({}, given, {})["PYTHONPATH"] == "/shim:/cand"
    assert "GOWORK" not in over({"GOWORK": "off"}, given, {})
    assert over({}, given, {"GOWORK": "/shared/go.work"})["GOWORK"] == "/gen/go.work"


def test_layouts_and_non_python_repos(tmp_path: Path) -> None:
    assert python_root(project(tmp_path / "s", "s", src=True, body="")) == tmp_path / "s/src"
    assert python_root(project(tmp_path / "f", "f", src=False, body="")) == tmp_path / "f"
    (tmp_path / "n").mkdir()
    assert python_root(tmp_path / "n") is None


def test_go_work_uses_every_candidates_module_at_the_highest_go_version(tmp_path: Path) -> None:
    wts = {}
    for name, ver in (("app", "1.19"), ("lib", "1.21.3"), ("docs", None)):
        wt = tmp_path / name / ".git" / "coord-worktrees" / "chg"
        wt.mkdir(parents=True)
        if ver:
            (wt / "go.mod").write_text(f"module example.com/{name}\n\ngo {ver}\n")
        wts[name] = str(wt)
    nested = Path(wts["lib"]) / "tools"
    nested.mkdir()
    (nested / "go.mod").write_text("module example.com/lib/tools\n\ngo 1.20\n")
    (Path(wts["lib"]) / "vendor" / "x").mkdir(parents=True)
    (Path(wts["lib"]) / "vendor" / "x" / "go.mod").write_text("module x\n")
    assert go_modules(wts["lib"]) == [Path(wts["lib"]), nested]
    env = candidate_env("app", wts)
    work = Path(env["GOWORK"]).read_text()
    assert work.startswith("go 1.21.3\n")
    assert [ln.strip().strip('"') for ln in work.splitlines() if ln.startswith("\t")] == [
        wts["app"], wts["lib"], str(nested)]
    # not a Go module itself (docs): no GOWORK; nor with no other Go candidate
    assert "GOWORK" not in candidate_env("docs", wts)
    assert "GOWORK" not in candidate_env("app", {"app": wts["app"], "docs": wts["docs"]})
