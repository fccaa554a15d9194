"""pom.xml with ``xml.etree``: ``group:artifact`` provided (the parent's group when the
project has none, and each listed module's), ``${project.groupId}``, ``${project.version}``
and ``<properties>`` resolved (a module inherits its parent pom's properties; a value
left unknown is not guessed), ``<dependencies>`` with their scope
(test -> dev, provided/system -> build, ``<optional>true`` -> optional, import skipped: a BOM pins, depends on nothing);
``<dependencyManagement>`` only pins versions and is not read."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from coordination.fleet.manifests.base import (Lines, Manifests, Requirement, inside, leaves,
                                               outside, read_text, unreadable)


_MAVEN_SCOPES = {"compile": "runtime", "runtime": "runtime", "test": "dev",
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
    inherited = _pom_project(out, rel, text)  # its <properties>: its modules inherit them
    project = ET.fromstring(text)
    modules = _child(project, "modules")
    for module in (modules if modules is not None else ()):
        if not module.text or not module.text.strip():
            continue
        name = module.text.strip()
        if leaves(name) or not inside(root / name, root):  # not this repo's
            outside(out, rel, Lines(text).find([f"<module>{name}</module>"]),
                    f"module {name!r}")
            continue
        manifest = root / name / "pom.xml"
        member_rel = os.path.relpath(manifest, root)
        member_text: str | None = None
        try:
            member_text = read_text(manifest, root)
            if member_text is not None:
                _pom_project(out, member_rel, member_text, inherited)
        except (OSError, UnicodeDecodeError, ValueError, ET.ParseError) as exc:
            out.problems.append(unreadable(member_rel, exc, member_text))


_PROPERTY = re.compile(r"\$\{([^}]+)\}")


def _properties(project: ET.Element, parent_values: dict[str, str]) -> dict[str, str]:
    """What ``${...}`` may name in this pom: ``project.groupId``, ``.artifactId``,
    ``.version`` (the parent's group and version when the project has none), the
    ``project.parent.*`` ones, their ``pom.*`` and bare deprecated spellings, and the
    ``<properties>`` (which may name those in turn)."""
    parent = _child(project, "parent")
    values: dict[str, str] = dict(parent_values)
    for key in ("groupId", "artifactId", "version"):
        own = _childread_text(project, key)
        inherited = _childread_text(parent, key) if key != "artifactId" else None
        for name, value in ((f"project.parent.{key}", _childread_text(parent, key)),
                            (f"project.{key}", own or inherited)):
            if value:
                values[name] = value
                values["pom." + name[len("project."):]] = value
        either = own or inherited
        if either:
            values[key] = either
    model = set(values) - set(parent_values)  # what the pom's own elements say
    props = _child(project, "properties")
    for prop in props if props is not None else ():
        # A module's own property overrides its parent's; never the project's elements.
        if prop.text and prop.text.strip() and _local(prop.tag) not in model:
            values[_local(prop.tag)] = prop.text.strip()
    return values


def _resolve(value: str | None, values: dict[str, str]) -> str | None:
    """``value`` with its ``${...}`` replaced (a few rounds: a property may name
    another); None when one stays unknown (never a name with ``${`` in it)."""
    for _ in range(5):
        if value is None or "${" not in value:
            return value
        value = _PROPERTY.sub(lambda m: values.get(m.group(1), m.group(0)), value)
        if all(m.group(1) not in values for m in _PROPERTY.finditer(value)):
            break
    return None if value is None or "${" in value else value


def _pom_project(out: Manifests, rel: str, text: str,
                 inherited: dict[str, str] | None = None) -> dict[str, str]:
    """Read one pom; its property values (for its modules, whose parent it is)."""
    project = ET.fromstring(text)
    lines = Lines(text)
    values = _properties(project, inherited or {})
    group = _resolve(values.get("project.groupId"), values)
    artifact = _resolve(_childread_text(project, "artifactId"), values)
    if group and artifact:
        out.provides.add(("maven", f"{group}:{artifact}"))
    deps = _child(project, "dependencies")  # not dependencyManagement: pins only
    for dep in deps if deps is not None else ():
        if _local(dep.tag) != "dependency":
            continue
        raw_a = _childread_text(dep, "artifactId")
        g = _resolve(_childread_text(dep, "groupId"), values)
        a = _resolve(raw_a, values)
        scope = _childread_text(dep, "scope") or "compile"
        if not g or not a or scope not in _MAVEN_SCOPES:
            continue  # import scope: a BOM, not a dependency
        optional = (_childread_text(dep, "optional") or "").lower() == "true"
        out.requires.append(Requirement(
            ("maven", f"{g}:{a}"), "optional" if optional and scope != "test"
            else _MAVEN_SCOPES[scope], rel,
            lines.find([f"<artifactId>{raw_a}</artifactId>"], ["<dependencies>"]),
            _resolve(_childread_text(dep, "version"), values)))
    return {k: v for k, v in values.items() if not k.startswith(("project.", "pom."))
            and k not in ("groupId", "artifactId", "version")}
