"""A manifest coord cannot read, or cannot read all of, says so: its file, the line where
one can be told, and what is wrong there; a field of the wrong shape is never read as
something else (a requirement string iterated as its characters); a manifest of a kind
coord does not read is a note in `coord init` and `coord init --check`, never silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.fleet import manifests as dm
from tests.unit.support.manifests import checkout, coord, coord_json

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def manifest_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("COORD_ECOSYSTEM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "fleet").mkdir()
    return tmp_path / "fleet"


def problems(root: Path) -> list[tuple[str, int | None, str, bool]]:
    m = dm.read(root)
    return [(p.file, p.line, p.message, p.whole) for p in m.problems]


SHAPES = [
    # (file, text, line, what the message says)
    ("pyproject.toml", '[project]\nname = "a"\ndependencies = "requests"\n', 3,
     "[project] dependencies: a list expected, not a string"),
    ("pyproject.toml", 'project = "a"\n', 1, "[project]: a table (object) expected, not a string"),
    ("pyproject.toml", '[project]\nname = "a"\n\n[project.optional-dependencies]\n'
                       'test = "pytest"\n', 5,
     "optional-dependencies test: a list expected, not a string"),
    ("pyproject.toml", '[tool.poetry]\nname = "a"\ndependencies = ["x"]\n', 3,
     "[tool.poetry.dependencies]: a table (object) expected, not a list"),
    ("package.json", '{\n  "name": "a",\n  "dependencies": ["left-pad"]\n}\n', 3,
     "dependencies: a table (object) expected, not a list"),
    ("Cargo.toml", '[package]\nname = "a"\n\n[[dependencies]]\nname = "serde"\n', 4,
     "[dependencies]: a table (object) expected, not a list"),
    ("composer.json", '{\n  "name": "acme/a",\n  "require": ["psr/log"]\n}\n', 3,
     "require: an object of package names expected, not list"),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), SHAPES)
def test_a_field_of_the_wrong_shape_is_located_and_nothing_is_guessed(
        tmp_path: Path, name: str, text: str, line: int, message: str) -> None:
    (tmp_path / name).write_text(text)
    m = dm.read(tmp_path)
    assert [(p.file, p.line, p.message, p.whole) for p in m.problems] == [
        (name, line, message, True)]
    assert m.requires == []  # not "r", "e", "q"... from "requests"


SCRIPTS = [
    ("build.gradle", "dependencies {\n  implementation 'com.acme:core:1.0'\n"
                     "  implementation \"com.acme:api:1.0\n}\n", 3,
     "cannot read the script from here: a string never closed"),
    ("build.gradle.kts", "plugins {\n  java\n}\n/* a comment\nnever closed\n", 4,
     "a /* comment never closed"),
    ("build.sbt", 'libraryDependencies += "com.acme" %% "core" % "1.0"\n'
                  'name := "x\n', 2, "cannot read the script from here: a string never closed"),
    ("settings.gradle", "include ':a'\ninclude ':b\n", 2,
     "cannot read the script from here: a string never closed"),
    ("setup.py", "from setuptools import setup\nsetup(name='a',\n", 2,
     "'(' was never closed"),
    ("Directory.Build.props", "<Project>\n  <PropertyGroup>\n</Project>\n", 3,
     "mismatched tag: line 3, column 2"),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), SCRIPTS)
def test_a_broken_build_script_names_its_line(tmp_path: Path, name: str, text: str,
                                              line: int, message: str) -> None:
    (tmp_path / name).write_text(text)
    got = problems(tmp_path)
    assert (name, line, message, True) in got, got


def test_a_broken_project_file_of_a_solution_is_its_own_problem(tmp_path: Path) -> None:
    (tmp_path / "Acme.sln").write_text(
        'Project("{FAE04EC0-301F-11D3-BF4B-00C04F79EFBC}") = "Api", "src\\Api\\Api.csproj", '
        '"{1}"\nEndProject\n'
        'Project("{FAE04EC0-301F-11D3-BF4B-00C04F79EFBC}") = "Core", "src\\Core\\Core.csproj", '
        '"{2}"\nEndProject\n')
    (tmp_path / "src/Api").mkdir(parents=True)
    (tmp_path / "src/Core").mkdir(parents=True)
    (tmp_path / "src/Api/Api.csproj").write_text('<Project Sdk="Microsoft.NET.Sdk">\n<ItemGroup>\n'
                                                 '</Project>\n')
    (tmp_path / "src/Core/Core.csproj").write_text(
        '<Project Sdk="Microsoft.NET.Sdk">\n  <ItemGroup>\n'
        '    <PackageReference Include="Serilog" Version="4.0.0" />\n'
        '  </ItemGroup>\n</Project>\n')
    m = dm.read(tmp_path)
    assert [(p.file, p.line, p.whole) for p in m.problems] == [("src/Api/Api.csproj", 3, True)]
    assert m.provides == {("nuget", "core")}  # the other project still read
    assert [(r.package, r.file, r.line) for r in m.requires] == [
        (("nuget", "serilog"), "src/Core/Core.csproj", 3)]


def test_an_unresolvable_gradle_notation_is_a_note_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "build.gradle").write_text(
        "group = 'com.acme'\n"
        "dependencies {\n"
        "  implementation deps.okhttp\n"
        "  implementation \"com.acme:core:$coreVersion\"\n"
        "  implementation libs.missing\n"
        "}\n")
    m = dm.read(tmp_path)
    notes = [(p.file, p.line, p.message, p.whole) for p in m.problems]
    assert ("build.gradle", 3, "implementation deps.okhttp: not a coordinate, a version "
            "catalog entry or a project: not read", False) in notes
    assert ("build.gradle", 5, "implementation libs.missing: not a coordinate, a version "
            "catalog entry or a project: not read", False) in notes
    # group and artifact known, the version a property nobody defines: read, no version
    assert [(r.package, r.line, r.constraint) for r in m.requires] == [
        (("maven", "com.acme:core"), 4, None)]


@pytest.mark.parametrize(("name", "kind"), [("Package.swift", "Swift Package Manager"),
                                            ("CMakeLists.txt", "CMake"),
                                            ("mix.exs", "Elixir Mix"),
                                            ("acme.cabal", "Cabal")])
def test_a_kind_coord_does_not_read_is_a_note_in_init_and_check(
        manifest_fleet: Path, capsys: pytest.CaptureFixture[str], name: str, kind: str) -> None:
    fleet = manifest_fleet
    checkout(fleet, "app", {name: "whatever it says\n", "README.md": "# app\n"})
    said = (f"app: {name}: a {kind} manifest: coord does not read {kind} manifests, so "
            "nothing is inferred from it (add what it names with `coord dep add`)")
    out = coord(fleet, capsys, "init", str(fleet))
    assert f"note: {said}" in out
    doc = coord_json(fleet, capsys, "init", "--check")
    assert said in doc["notes"] and doc["drift"] is False
    assert f"note: {said}" in coord(fleet, capsys, "init", "--check")
