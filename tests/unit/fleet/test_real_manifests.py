"""`coord init` over copies of real public repositories' manifests (Gradle with a version
catalog and convention plugins, sbt, Maven parents and properties across repos, .NET,
Ruby, PHP, Python's setup.py and environment requirement files, nested-only Go modules):
the dependencies it infers are exactly those written by hand in
``tests/unit/fixtures/fleets/expected.yaml``, each with its type, version and the file and
line it was read from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.cli.main import main

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
EXPECTED = yaml.safe_load((FIXTURES / "expected.yaml").read_text())
Edge = tuple[str, str, str, str, int, "str | None"]


def build_fleet(root: Path, repos: list[str]) -> Path:
    """A git checkout per repo, holding that repo's manifests at their paths."""
    fleet = root / "fleet"
    for name in repos:
        shutil.copytree(FIXTURES / name, fleet / name, ignore=shutil.ignore_patterns("NOTE"))
        subprocess.run(["git", "init", "-q", "-b", "main", str(fleet / name)], check=True)
    return fleet


def run_init(fleet: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(fleet)
    try:
        main(["-f", str(fleet / "ecosystem.yaml"), "init", str(fleet), "--dry-run", "--json"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    finally:
        os.chdir(cwd)
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def inferred(doc: dict[str, Any]) -> set[Edge]:
    return {(d["consumer"], d["provider"], d["type"], d["source"]["file"],
             d["source"]["line"], d.get("version_constraint"))
            for d in doc["dependencies_added"]}


def expected(repos: list[str]) -> set[Edge]:
    return {(e["consumer"], e["provider"], e["type"], e["file"], e["line"],
             None if e["version"] is None else str(e["version"]))
            for e in EXPECTED["edges"] if e["consumer"] in repos and e["provider"] in repos}


@pytest.fixture
def real_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("COORD_ECOSYSTEM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("group", sorted(EXPECTED["groups"]))
def test_each_ecosystem_infers_the_edges_written_by_hand(
        group: str, real_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repos = EXPECTED["groups"][group]
    doc = run_init(build_fleet(real_fleet, repos), capsys)
    got, want = inferred(doc), expected(repos)
    assert got == want, (f"missing: {sorted(want - got)}\nnot expected: {sorted(got - want)}"
                         f"\nnotes: {doc['notes']}")
    assert doc["manifests_unreadable"] == []


def test_the_whole_fleet_of_26_repos(real_fleet: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Every repo together: no false edge between ecosystems, no package two repos
    provide, and every repo tagged with what it is."""
    repos = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert len(repos) == 26
    doc = run_init(build_fleet(real_fleet, repos), capsys)
    got, want = inferred(doc), expected(repos)
    assert got == want, f"missing: {sorted(want - got)}\nnot expected: {sorted(got - want)}"
    assert not [n for n in doc["notes"] if "is provided by" in n], doc["notes"]
    tags = {r["name"]: set(r.get("tags", [])) for r in doc["repos_added"]}
    for name, tag in [("retrofit", "java"), ("okhttp", "kotlin"), ("cats", "scala"),
                      ("play-json", "scala"), ("jackson-bom", "java"), ("polly", "dotnet"),
                      ("polly", "csharp"), ("serilog", "csharp"),
                      ("rack", "ruby"), ("sinatra", "ruby"), ("guzzle", "php"),
                      ("h11", "python"), ("go-secure-stdlib", "go"),
                      ("newtonsoft-json", "dotnet"), ("newtonsoft-json", "csharp"),
                      ("jackson-module-scala", "scala")]:
        assert tag in tags[name], (name, tags[name])


def test_init_then_check_finds_no_drift(real_fleet: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """What init wrote is what --check reads again: the same edges, versions (a parent's
    property settled through another repo) and lines, every time."""
    repos = EXPECTED["groups"]["maven"] + EXPECTED["groups"]["gradle"] + ["play-json"]
    fleet = build_fleet(real_fleet, sorted(set(repos)))
    cwd = os.getcwd()
    os.chdir(fleet)
    codes = []
    try:
        for args in (["init", str(fleet)], ["init", "--check", "--json"]):
            capsys.readouterr()
            try:
                main(["-f", str(fleet / "ecosystem.yaml"), *args])
                codes.append(0)
            except SystemExit as exc:
                codes.append(int(exc.code or 0))
    finally:
        os.chdir(cwd)
    doc = json.loads(capsys.readouterr().out)
    assert codes == [0, 0] and doc["drift"] is False, doc
    assert doc["dependencies_moved"] == [] and doc["dependencies_changed"] == []
