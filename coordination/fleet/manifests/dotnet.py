""".NET: MSBuild project files (``*.csproj``, ``*.fsproj``, ``*.vbproj``) with
``xml.etree``, found through the solution at the checkout's top (``*.sln``'s ``Project``
lines, ``*.slnx``'s ``<Project Path>``), else the solutions nearest the top up to
:data:`DEPTH` directories down (Newtonsoft.Json's ``Src/``, with the
``Directory.Build.props`` beside them), else every project file up to that depth.

A project provides its NuGet id (``PackageId``, else ``AssemblyName``, else the file's
name), unless it is not packed (``IsPackable`` false), a test project or in an example
or test directory. ``PackageReference`` is runtime (``PrivateAssets="all"``, an analyzer
or a build tool, is build), its version written there (``Version``,
``VersionOverride``) or centrally in ``Directory.Packages.props`` (``PackageVersion``;
its ``GlobalPackageReference`` items are build requirements of every project). A test
project (``IsTestProject``, the ``MSTest.Sdk``, or a reference to
``Microsoft.NET.Test.Sdk``, xunit, NUnit or MSTest) needs what it references as dev.
``ProjectReference`` to a project of the checkout is the repo's own; one leaving it is
another repo (a dependency by path). ``Directory.Build.props`` at the top gives the
properties ``$(...)`` may name and package references every project gets. NuGet ids
compare case-insensitively."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, Manifests, Requirement,
                                               incidental, inside, leaves, note, outside,
                                               read_member, unknown_versions)

PROJECTS = (".csproj", ".fsproj", ".vbproj")
SOLUTIONS = (".sln", ".slnx")
_LANGUAGE = {".csproj": "csharp", ".fsproj": "fsharp", ".vbproj": "vbnet"}
_SLN_PROJECT = re.compile(r'^Project\("\{[^}]*\}"\)\s*=\s*"[^"]*"\s*,\s*"([^"]+)"', re.M)
_TEST_PACKAGES = re.compile(r"^(microsoft\.net\.test\.sdk|mstest(\..*)?|xunit(\..*)?|nunit(\d|\..*)?"
                            r"|.*\.(xunit|nunit|mstest))$", re.I)
_PROPERTY = re.compile(r"\$\(([\w.]+)\)")
#: How far below the top project files are looked for when there is no solution.
DEPTH = 4
_SKIP = frozenset({"bin", "obj", "node_modules", "packages", "artifacts"})


@dataclass
class _Repo:
    out: Manifests
    root: Path
    properties: dict[str, str] = field(default_factory=dict)
    central: dict[str, str] = field(default_factory=dict)  # id (lower) -> version
    #: file -> (line, expression) of each version a property coord cannot know sets
    unknown: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _items(project: ET.Element, kind: str) -> list[ET.Element]:
    return [el for group in project if _local(group.tag) == "ItemGroup"
            for el in group if _local(el.tag) == kind]


def _attr(el: ET.Element, name: str) -> str | None:
    """An item's metadata, as an attribute or a child element."""
    if name in el.attrib:
        return el.attrib[name].strip()
    for c in el:
        if _local(c.tag) == name and c.text:
            return c.text.strip()
    return None


def _props(project: ET.Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for group in project:
        if _local(group.tag) != "PropertyGroup":
            continue
        for el in group:
            if el.text and el.text.strip() and "Condition" not in el.attrib:
                out[_local(el.tag)] = el.text.strip()
    return out


def _expand(value: str | None, values: dict[str, str]) -> str | None:
    if value is None or "$(" not in value:
        return value
    got = _PROPERTY.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    return None if "$(" in got else got


def read(out: Manifests, root: Path, names: set[str]) -> None:
    """The .NET projects of the checkout at ``root`` (``names``: its top level)."""
    repo = _Repo(out, root)
    out.tags.add("dotnet")
    if "Directory.Build.props" in names:
        read_member(out, root, root / "Directory.Build.props",
                    lambda rel, text: _build_props(repo, rel, text))
    if "Directory.Packages.props" in names:
        read_member(out, root, root / "Directory.Packages.props",
                    lambda rel, text: _packages_props(repo, rel, text))
    solutions = sorted(n for n in names if n.endswith(SOLUTIONS))
    if not solutions and not any(n.endswith(PROJECTS) for n in names):
        # Nothing of .NET at the top: its solutions where they are, the nearest the top
        # (Newtonsoft.Json's Src/Newtonsoft.Json.slnx), with the props beside them.
        solutions = _solutions_below(root)
        for directory in sorted({os.path.dirname(s) for s in solutions}):
            read_member(out, root, root / directory / "Directory.Build.props",
                        lambda rel, text: _build_props(repo, rel, text))
            read_member(out, root, root / directory / "Directory.Packages.props",
                        lambda rel, text: _packages_props(repo, rel, text))
    projects: list[str] = []
    for name in solutions:
        read_member(out, root, root / name,
                    lambda rel, text: projects.extend(_solution(repo, rel, text)))
    if not solutions:
        projects.extend(_walk(root))
    for rel in dict.fromkeys(projects):
        read_member(out, root, root / rel, lambda r, text: _project(repo, r, text))
    for rel, found in repo.unknown.items():
        unknown_versions(out, rel, found)


def _build_props(repo: _Repo, rel: str, text: str) -> None:
    project = ET.fromstring(text)
    repo.properties.update(_props(project))
    lines = Lines(text)
    for ref in _items(project, "PackageReference"):
        _reference(repo, rel, ref, lines, "runtime")


def _packages_props(repo: _Repo, rel: str, text: str) -> None:
    project = ET.fromstring(text)
    values = {**repo.properties, **_props(project)}
    for pv in _items(project, "PackageVersion"):
        name = pv.attrib.get("Include")  # (an Update: another version under a condition)
        version = _expand(_attr(pv, "Version"), values)
        if name and version:
            repo.central.setdefault(name.lower(), version)
    lines = Lines(text)
    for ref in _items(project, "GlobalPackageReference"):
        _reference(repo, rel, ref, lines, "build")


def _solution(repo: _Repo, rel: str, text: str) -> list[str]:
    """The project files a solution names, relative to the checkout; one outside it
    is another repo (a dependency by path, nothing of it read)."""
    if rel.endswith(".slnx"):
        paths = [el.attrib["Path"] for el in ET.fromstring(text).iter()
                 if _local(el.tag) == "Project" and "Path" in el.attrib]
    else:
        paths = _SLN_PROJECT.findall(text)
    out: list[str] = []
    base = (repo.root / rel).parent
    lines = Lines(text)
    for raw in paths:
        path = raw.replace("\\", "/")
        if not path.endswith(PROJECTS):
            continue  # a solution folder
        target = os.path.normpath(base / path)
        if leaves(path) or not inside(target, repo.root):
            line = lines.find([raw])
            outside(repo.out, rel, line, f"project {raw!r}")
            repo.out.requires.append(Requirement((PATH_ECOSYSTEM, os.path.dirname(target)),
                                                 "build", rel, line, None,
                                                 os.path.dirname(target)))
            continue
        out.append(os.path.relpath(target, repo.root))
    return out


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """What ``directory`` holds that a search for projects and solutions looks at, by
    name: neither a hidden entry nor one of :data:`_SKIP` (none: it cannot be read)."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return []
    return [e for e in entries if not e.name.startswith(".") and e.name not in _SKIP]


def _walk(root: Path) -> list[str]:
    """Project files up to :data:`DEPTH` below the top (no solution names them)."""
    found: list[str] = []
    stack = [(root, 0)]
    while stack:
        directory, level = stack.pop()
        for e in _entries(directory):
            if e.is_dir(follow_symlinks=False):
                if level < DEPTH:
                    stack.append((Path(e.path), level + 1))
            elif e.name.endswith(PROJECTS):
                found.append(os.path.relpath(e.path, root))
    return sorted(found)


def _solutions_below(root: Path) -> list[str]:
    """The solutions nearest the top, up to :data:`DEPTH` below it (all those of the
    shallowest level holding one), relative to the checkout; none: an empty list."""
    level, current = 0, [root]
    while current and level <= DEPTH:
        found: list[str] = []
        below: list[Path] = []
        for directory in current:
            for e in _entries(directory):
                if e.name.endswith(SOLUTIONS) and e.is_file(follow_symlinks=False):
                    found.append(os.path.relpath(e.path, root))
                elif level < DEPTH and e.is_dir(follow_symlinks=False):
                    below.append(Path(e.path))
        if found:
            return sorted(found)
        level, current = level + 1, below
    return []


def _is_test(project: ET.Element, props: dict[str, str]) -> bool:
    if props.get("IsTestProject", "").lower() == "true":
        return True
    if project.attrib.get("Sdk", "").startswith("MSTest.Sdk"):
        return True
    return any(_TEST_PACKAGES.match(ref.attrib.get("Include", ""))
               for ref in _items(project, "PackageReference"))


def _project(repo: _Repo, rel: str, text: str) -> None:
    project = ET.fromstring(text)
    stem, suffix = os.path.splitext(os.path.basename(rel))
    props = {**repo.properties, "MSBuildProjectName": stem, **_props(project)}
    aside = _is_test(project, props) or incidental(rel)
    if not aside:
        repo.out.tags.add(_LANGUAGE.get(suffix, "dotnet"))
    packable = props.get("IsPackable", "true").lower() != "false"
    if not aside and packable:
        name = _expand(props.get("PackageId"), props) or _expand(props.get("AssemblyName"),
                                                                  props) or stem
        repo.out.provides.add(("nuget", name.lower()))
    lines = Lines(text)
    for ref in _items(project, "PackageReference"):
        _reference(repo, rel, ref, lines, "dev" if aside else "runtime")
    for ref in _items(project, "ProjectReference"):
        raw = ref.attrib.get("Include", "")
        path = raw.replace("\\", "/")
        if not path:
            continue
        target = os.path.normpath((repo.root / rel).parent / path)
        if leaves(os.path.relpath(target, repo.root)) or not inside(target, repo.root):
            line = lines.find([f'Include="{raw}"', raw])
            outside(repo.out, rel, line, f"project reference {raw!r}")
            repo.out.requires.append(Requirement(
                (PATH_ECOSYSTEM, os.path.dirname(target)), "dev" if aside else "runtime",
                rel, line, None, os.path.dirname(target)))


def _reference(repo: _Repo, rel: str, ref: ET.Element, lines: Lines, type_: str) -> None:
    name = ref.attrib.get("Include")
    if not name:
        return  # an Update: changes a reference another file makes
    if "$(" in name:
        note(repo.out, rel, lines.find([f'Include="{name}"']),
             f"a package named by the property {name[:40]}: not read")
        return
    private = (_attr(ref, "PrivateAssets") or "").lower() == "all"
    version = (_attr(ref, "VersionOverride") or _attr(ref, "Version")
               or repo.central.get(name.lower()))
    line = lines.find([f'Include="{name}"', f"Include='{name}'", name])
    known = _expand(version, repo.properties)
    if version is not None and known is None:
        repo.unknown.setdefault(rel, []).append((line, version))
    repo.out.requires.append(Requirement(
        ("nuget", name.lower()), "build" if private and type_ == "runtime" else type_, rel,
        line, known))

