"""pom.xml with ``xml.etree``: ``group:artifact`` provided (the parent's group when the
project has none, and each listed module's), ``<dependencies>`` with their scope
(test -> test, provided/system -> build, import skipped: a BOM pins, depends on nothing);
``<dependencyManagement>`` only pins versions and is not read."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from coordination.fleet.manifests.base import Lines, Manifests, Requirement, read_text


_MAVEN_SCOPES = {"compile": "runtime", "runtime": "runtime", "test": "test",
                 "provided": "build", "system": "build"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _childread_text(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text else None


def pom(out: Manifests, root: Path, rel: str, text: str) -> None:
    _pom_project(out, rel, text)
    project = ET.fromstring(text)
    modules = _child(project, "modules")
    for module in (modules if modules is not None else ()):
        if not module.text or not module.text.strip():
            continue
        manifest = root / module.text.strip() / "pom.xml"
        member_rel = os.path.relpath(manifest, root)
        try:
            member_text = read_text(manifest)
            if member_text is not None:
                _pom_project(out, member_rel, member_text)
        except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
            out.problems.append(f"{member_rel}: {exc}")


def _pom_project(out: Manifests, rel: str, text: str) -> None:
    project = ET.fromstring(text)
    lines = Lines(text)
    group = _childread_text(project, "groupId") or _childread_text(_child(project, "parent"), "groupId")
    artifact = _childread_text(project, "artifactId")
    if group and artifact:
        out.provides.add(("maven", f"{group}:{artifact}"))
    deps = _child(project, "dependencies")  # not dependencyManagement: pins only
    for dep in deps if deps is not None else ():
        if _local(dep.tag) != "dependency":
            continue
        g, a = _childread_text(dep, "groupId"), _childread_text(dep, "artifactId")
        scope = _childread_text(dep, "scope") or "compile"
        if not g or not a or scope not in _MAVEN_SCOPES:
            continue  # import scope: a BOM, not a dependency
        out.requires.append(Requirement(
            ("maven", f"{g}:{a}"), _MAVEN_SCOPES[scope], rel,
            lines.find([f"<artifactId>{a}</artifactId>"], ["<dependencies>"]),
            _childread_text(dep, "version")))
