"""`coord init` over checkouts a todo could have shaped (#59): a manifest that is a
symlink into ``.git/`` is not read (0.5 printed every line of ``.git/config``, an
``http.extraheader`` authorization header with them); nothing of a manifest is echoed
past 80 characters, secret-looking values masked; a directory named with a newline is
printed escaped; ``.coord/fleet.json`` cannot aim `coord init` outside the catalog's
directory (nor at ``/``) unless coord itself remembered the root. Real git checkouts,
the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zm9vOmJhcl9TRUNSRVRfVE9LRU4="


def coord(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cwd / ".cache-home"))
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", *args], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=120)
    if expect is not None:
        assert res.returncode == expect, (res.returncode, res.stdout[-3000:], res.stderr[-3000:])
    return res


def checkout(d: Path, files: dict[str, str] | None = None) -> Path:
    d.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True)
    for name, text in (files or {}).items():
        (d / name).write_text(text)
    return d


def test_a_manifest_symlink_into_git_is_not_read_and_nothing_secret_is_echoed(
        tmp_path: Path) -> None:
    src = tmp_path / "src"
    api = checkout(src / "api")
    with open(api / ".git" / "config", "a") as f:  # what a credential setup leaves there
        f.write(f"[http]\n\textraheader = AUTHORIZATION: basic {SECRET}\n")
    (api / "requirements.txt").symlink_to(".git/config")
    (api / "setup.cfg").symlink_to(api / ".git" / "config")
    checkout(src / "web", {"requirements.txt": (
        f"requests>=2\napi_token = {SECRET}\n" + "x" * 300 + " !!\n")})
    human = coord(tmp_path, "init", "src", "--dry-run")
    doc = json.loads(coord(tmp_path, "init", "src", "--dry-run", "--json").stdout)
    for out in (human.stdout + human.stderr, json.dumps(doc)):
        assert SECRET not in out, out
        assert "repositoryformatversion" not in out and "extraheader" not in out, out
        assert "x" * 81 not in out, out  # an echo is cut at 80 characters
    problems = {(u["repo"], u["file"]): u["message"] for u in doc["manifests_unreadable"]}
    assert "symlink into .git" in problems[("api", "requirements.txt")], problems
    assert "symlink into .git" in problems[("api", "setup.cfg")], problems
    web = [n for n in doc["notes"] if n.startswith("web: ")]  # entries not understood
    assert any("'api_token = ***' is not a requirement" in n for n in web), web
    assert any("'" + "x" * 80 + "…'" in n for n in web), web


def test_a_newline_in_a_directory_name_is_printed_escaped(tmp_path: Path) -> None:
    checkout(tmp_path / "src" / "evil\nrepo", {"requirements.txt": "requests\n"})
    out = coord(tmp_path, "init", "src", "--dry-run").stdout
    lines = out.splitlines()
    assert any("evil\\nrepo" in ln for ln in lines), out
    assert not any(ln.startswith("repo [python]") for ln in lines), out  # 0.5: a line of its own


def test_fleet_json_cannot_aim_init_outside_the_catalogs_directory(tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    cat.mkdir()
    eco = cat / "ecosystem.yaml"
    checkout(tmp_path / "src" / "api", {"requirements.txt": "requests\n"})
    checkout(tmp_path / "other" / "stranger", {"requirements.txt": "flask\n"})
    coord(tmp_path, "--file", str(eco), "init", "src")  # remembered by coord: audited
    fleet = cat / ".coord" / "fleet.json"
    assert json.loads(fleet.read_text())["roots"] == [str(tmp_path / "src")]
    doc = json.loads(coord(tmp_path, "--file", str(eco), "init", "--check", "--json").stdout)
    assert doc["roots"] == [str(tmp_path / "src")] and not doc["drift"]  # scanned again
    # A hand (or a todo's) edit aims it elsewhere: not scanned, said.
    fleet.write_text(json.dumps({"roots": [str(tmp_path / "src"), str(tmp_path / "other"),
                                           "/"], "depth": 0}))
    res = coord(tmp_path, "--file", str(eco), "init", "--check", "--json", expect=None)
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    said = res.stdout + res.stderr
    assert "stranger" not in [r.get("name") for r in doc.get("repos_added", [])], said  # 0.5: added
    assert "is the filesystem's root" in said and "not the one coord last wrote" in said, said
    verified = coord(tmp_path, "--file", str(eco), "audit", "--verify", "--json", expect=1)
    files = json.loads(verified.stdout)["files"]
    assert [f["file"] for f in files] == [str(fleet)], files
    # Naming a root on the command line scans it, and coord remembers the file again.
    coord(tmp_path, "--file", str(eco), "init", "src")
    assert coord(tmp_path, "--file", str(eco), "audit", "--verify", "--json",
                 expect=0).stdout
