"""What a checkout's manifests say it provides and requires (``coord init``).

Each ecosystem is read with its own parser, one module each: ``python`` (``tomllib``,
``configparser``, ``ast`` for setup.py, ``packaging``), ``node`` (``json``), ``go``
(go.mod's line grammar), ``rust`` (``tomllib``), ``java`` (``xml.etree``: Maven),
``gradle`` and ``sbt`` (their build scripts' tokens, :mod:`.scan`: never run),
``dotnet`` (MSBuild's XML), ``ruby`` (gemspec and Gemfile lines: never evaluated),
``php`` (``json``). The last five are imported only for a checkout holding their
manifests. A package is named per ecosystem, normalised as that ecosystem compares
names: ``("python", canonicalize_name(n))``, ``("npm", n)``, ``("go", module path)``,
``("cargo", n with '_' as '-')``, ``("maven", "group:artifact")`` (Maven, Gradle and sbt
alike, a Scala suffix off), ``("nuget", id lower-cased)``, ``("gem", n)``,
``("composer", vendor/name)``; a requirement known by its local path only (``-e
../core``) is ``("path", absolute path)``, matched to the checkout that path is in. A
manifest that cannot be read is a problem reported with the checkout, never a failure
of the whole run: a :class:`ManifestProblem` naming the file, the line the parser gave
and its message (``whole``: nothing of the file was read, so what it provides and
requires is unknown, which `coord init --check` never takes for "gone"); one entry not
understood, or a manifest of a kind coord does not read (``Package.swift``), is a note
(``whole`` false). What only the whole fleet can settle (a Maven parent in another
repo) is settled by :func:`link` once every checkout is read.
"""

from __future__ import annotations

import configparser
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import yaml

from coordination.fleet.manifests import go, java, node, python, rust
from coordination.fleet.manifests.base import (
    MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES,
    ManifestProblem as ManifestProblem,
    Manifests as Manifests,
    Package as Package,
    Requirement as Requirement,
    note,
    read_text,
    unreadable,
)
from coordination.fleet.manifests.python import group_type as group_type

#: What a repo is, from the names at its top level: tag -> file names (or suffixes).
TAG_FILES: dict[str, tuple[str, ...]] = {
    "python": ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "requirements.txt"),
    "node": ("package.json", "pnpm-workspace.yaml"),
    "typescript": ("tsconfig.json",),
    "go": ("go.mod", "go.work"),
    "rust": ("Cargo.toml",),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle",
             "settings.gradle.kts"),
    "scala": ("build.sbt",),
    "php": ("composer.json",),
    "dotnet": ("Directory.Build.props", "Directory.Packages.props", "global.json"),
    "docker": ("Dockerfile", "Containerfile", "docker-compose.yml", "docker-compose.yaml",
               "compose.yml", "compose.yaml"),
    "helm": ("Chart.yaml",),
    "ruby": ("Gemfile", "gems.rb"),
}
TAG_SUFFIXES: dict[str, tuple[str, ...]] = {
    "terraform": (".tf",), "docker": (".dockerfile",), "ruby": (".gemspec",),
    "dotnet": (".sln", ".slnx", ".csproj", ".fsproj", ".vbproj")}
#: Manifests of kinds coord does not read: each found at a checkout's top is a note
#: (what it names is no dependency coord knows of), never silence.
UNREAD: dict[str, str] = {
    "Package.swift": "Swift Package Manager", "Podfile": "CocoaPods", "Cartfile": "Carthage",
    "pubspec.yaml": "Dart pub", "mix.exs": "Elixir Mix", "rebar.config": "rebar3",
    "project.clj": "Leiningen", "deps.edn": "Clojure CLI", "build.xml": "Ant",
    "ivy.xml": "Ivy", "stack.yaml": "Stack", "cabal.project": "Cabal",
    "CMakeLists.txt": "CMake", "conanfile.txt": "Conan", "conanfile.py": "Conan",
    "vcpkg.json": "vcpkg", "meson.build": "Meson", "MODULE.bazel": "Bazel",
    "WORKSPACE": "Bazel", "WORKSPACE.bazel": "Bazel", "build.zig.zon": "Zig",
    "dune-project": "dune", "environment.yml": "conda", "environment.yaml": "conda",
    "pixi.toml": "pixi", "deno.json": "Deno", "deno.jsonc": "Deno", "shard.yml": "Crystal",
    "Project.toml": "Julia Pkg", "elm.json": "Elm", "gleam.toml": "Gleam",
    "build.mill": "Mill", "build.sc": "Mill", "cpanfile": "cpanfile",
    "Makefile.PL": "ExtUtils::MakeMaker", "DESCRIPTION": "R package",
}
UNREAD_SUFFIXES: dict[str, str] = {".cabal": "Cabal", ".nimble": "Nimble",
                                   ".rockspec": "LuaRocks", ".opam": "opam"}

#: A manifest reader: (what it adds to, the checkout, the manifest's path in it, its text).
_Reader = Callable[[Manifests, Path, str, str], None]
READERS: tuple[tuple[str, _Reader], ...] = (
    ("pyproject.toml", python.pyproject), ("setup.cfg", python.setup_cfg),
    ("package.json", node.package_json), ("pnpm-workspace.yaml", node.pnpm_workspace),
    ("go.mod", go.go_mod), ("go.work", go.go_work), ("Cargo.toml", rust.cargo),
    ("pom.xml", java.pom), ("setup.py", python.setup_py), ("Pipfile", python.pipfile),
)


#: The same tables, by name and by extension, for one pass over a checkout's names.
_NAME_TAGS: dict[str, list[str]] = {}
for _tag, _files in TAG_FILES.items():
    for _file in _files:
        _NAME_TAGS.setdefault(_file, []).append(_tag)
_SUFFIX_TAGS: dict[str, list[str]] = {}
for _tag, _suffixes in TAG_SUFFIXES.items():
    for _suffix in _suffixes:
        _SUFFIX_TAGS.setdefault(_suffix, []).append(_tag)


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def tags_of(names: Iterable[str]) -> set[str]:
    """The tags of a checkout whose top level holds ``names``."""
    out: set[str] = set()
    for n in names:
        tags = _NAME_TAGS.get(n) or _SUFFIX_TAGS.get(_extension(n))
        if tags:
            out.update(tags)
        elif n.startswith("requirements") and n.endswith(".txt"):
            out.add("python")
    return out


def read(root: Path, names: Iterable[str] | None = None) -> Manifests:
    """Read every manifest at the top of the checkout ``root`` (``names``: the names
    there, when the caller listed them already)."""
    if names is None:
        names = [e.name for e in os.scandir(root)]
    names = set(names)
    out = Manifests(tags=tags_of(names))
    for name, reader in READERS:
        if name in names:
            _guarded(out, root, name, reader)
    if "dotnet" not in out.tags and not out.files and not out.tags & _BUILDS \
            and _dotnet_below(root):
        out.tags.add("dotnet")  # its solution and projects under Src/ (Newtonsoft.Json)
    _other_ecosystems(out, root, names)
    requirements: list[str] = []
    unread: list[tuple[str, str]] = []
    for name in sorted(names):
        if name.startswith("requirements") and name.endswith(".txt"):
            requirements.append(name)
        kind = UNREAD.get(name) or UNREAD_SUFFIXES.get(_extension(name))
        if kind is not None:
            unread.append((name, kind))
    if "requirements" in names and (root / "requirements").is_dir():
        requirements += [f"requirements/{p.name}"
                         for p in sorted((root / "requirements").glob("*.txt"))]
    # Beside the package's own metadata, a requirements file is its environment (dev).
    own = any(p[0] == "python" for p in out.provides)
    for name in requirements:
        _guarded(out, root, name, python.environment_txt if own else python.requirements_txt)
    if "go" not in out.tags and not out.files and go.nested_only(root, names):
        out.tags.add("go")  # every module nested (hashicorp/go-secure-stdlib)
    if "go" in out.tags:  # a Go repo's modules below its top (common/assets/go.mod)
        go.nested(out, root)
    for name, kind in unread:
        if (root / name).is_file():
            note(out, name, None, f"a {kind} manifest: coord does not read {kind} manifests, "
                 "so nothing is inferred from it (add what it names with `coord dep add`)")
    return out


#: Tags of a build read at the top: a checkout with one is not searched below for .NET.
_BUILDS = frozenset({"python", "node", "go", "rust", "java", "scala", "php", "ruby"})
#: How far below the top .NET solutions and projects are found (as dotnet.DEPTH).
DOTNET_DEPTH = 4
_DOTNET_SUFFIXES = (".sln", ".slnx", ".csproj", ".fsproj", ".vbproj")
_DOTNET_SKIP = frozenset({"bin", "obj", "node_modules", "packages", "artifacts"})


def _dotnet_below(root: Path) -> bool:
    """Does a checkout with no manifest at its top hold a .NET solution or project up
    to :data:`DOTNET_DEPTH` directories down (Newtonsoft.Json keeps everything under
    ``Src/``)? Breadth first, stopping at the first; never through a symlink."""
    level, current = 0, [str(root)]
    while current and level <= DOTNET_DEPTH:
        below: list[str] = []
        for directory in current:
            try:
                with os.scandir(directory) as it:
                    for e in it:
                        if e.name.startswith(".") or e.name in _DOTNET_SKIP:
                            continue
                        if e.name.endswith(_DOTNET_SUFFIXES) and level > 0 \
                                and e.is_file(follow_symlinks=False):
                            return True
                        if level < DOTNET_DEPTH and e.is_dir(follow_symlinks=False):
                            below.append(e.path)
            except OSError:
                continue
        level, current = level + 1, below
    return False


def link(fleet: Sequence[Manifests]) -> None:
    """Settle what each checkout's manifests left to the whole fleet (a Maven
    ``${property}`` its parent in another repo defines, a version that parent
    manages): once every checkout of the fleet is read."""
    shared: dict[object, object] = {}
    for m in fleet:
        for linker in m.links:
            linker.link(fleet, shared)
    for m in fleet:  # settled: a second call (another compare) finds nothing to do
        m.links.clear()


#: the files that make a checkout a Gradle build, the first found named in its notes
GRADLE_BUILDS = ("settings.gradle.kts", "settings.gradle", "build.gradle.kts", "build.gradle")


def _other_ecosystems(out: Manifests, root: Path, names: set[str]) -> None:
    """The ecosystems whose readers are imported only when their manifests are here."""
    if names.intersection(GRADLE_BUILDS):
        first = next(n for n in GRADLE_BUILDS if n in names)

        def gradle_build(out: Manifests, root: Path, rel: str, text: str) -> None:
            # lazy: coord init, only a checkout with a Gradle build pays for its reader
            from coordination.fleet.manifests import gradle
            gradle.read_build(out, root)
        _whole(out, root, first, gradle_build)
    if "build.sbt" in names:
        def sbt_build(out: Manifests, root: Path, rel: str, text: str) -> None:
            # lazy: coord init, only a checkout with an sbt build pays for its reader
            from coordination.fleet.manifests import sbt
            sbt.read_build(out, root, names)
        _whole(out, root, "build.sbt", sbt_build)
    if "dotnet" in out.tags:
        def dotnet_build(out: Manifests, root: Path, rel: str, text: str) -> None:
            # lazy: coord init, only a .NET checkout pays for its reader
            from coordination.fleet.manifests import dotnet
            dotnet.read(out, root, names)
        _whole(out, root, ".", dotnet_build)
    if "ruby" in out.tags:
        # lazy: coord init, only a Ruby checkout pays for its reader
        from coordination.fleet.manifests import ruby
        for name in sorted(n for n in names if n.endswith(".gemspec")):
            _guarded(out, root, name, ruby.gemspec)
        for name in ("Gemfile", "gems.rb"):
            if name in names:
                _guarded(out, root, name, ruby.gemfile)
    if "composer.json" in names:
        # lazy: coord init, only a PHP checkout pays for its reader
        from coordination.fleet.manifests import php
        _guarded(out, root, "composer.json", php.composer_json)


def prepare(names: Iterable[str]) -> None:
    """Import the readers that checkouts whose tops hold ``names`` will need, before
    the processes that read them are forked: each would import them otherwise (the
    imports :func:`_other_ecosystems` makes, once)."""
    names = set(names)
    tags = tags_of(names)
    if names.intersection(GRADLE_BUILDS):
        # lazy: coord init, as in _other_ecosystems: only a fleet with such a build
        from coordination.fleet.manifests import gradle  # noqa: F401
    if "build.sbt" in names:
        from coordination.fleet.manifests import sbt  # noqa: F401  # lazy: as above
    if "dotnet" in tags:
        from coordination.fleet.manifests import dotnet  # noqa: F401  # lazy: as above
    if "ruby" in tags:
        from coordination.fleet.manifests import ruby  # noqa: F401  # lazy: as above
    if "composer.json" in names:
        from coordination.fleet.manifests import php  # noqa: F401  # lazy: as above


def _whole(out: Manifests, root: Path, rel: str, reader: _Reader) -> None:
    """Run a reader that reads its own files (a whole build); an error it did not
    expect is a problem of ``rel``, never a failure of the run."""
    try:
        reader(out, root, rel, "")
    except _ERRORS as exc:
        out.problems.append(unreadable(rel, exc))


_ERRORS = (OSError, UnicodeDecodeError, ValueError, ET.ParseError, configparser.Error,
           TypeError, AttributeError, KeyError, IndexError, yaml.YAMLError, RecursionError,
           SyntaxError)


def _guarded(out: Manifests, root: Path, rel: str, reader: _Reader) -> None:
    text: str | None = None
    try:
        text = read_text(root / rel, root)
        if text is not None:
            out.files.add(rel)
            reader(out, root, rel, text)
    except _ERRORS as exc:
        # ValueError covers tomllib.TOMLDecodeError, json.JSONDecodeError and
        # base.Unreadable (a symlink out, a FIFO, too large, a bad go.mod directive);
        # RecursionError a file nested too deep for its parser.
        out.problems.append(unreadable(rel, exc, text))
