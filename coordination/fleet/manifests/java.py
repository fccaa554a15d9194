"""pom.xml with ``xml.etree``: ``group:artifact`` provided (the parent's group when the
project has none, and each listed module's), ``${project.groupId}``, ``${project.version}``
and ``<properties>`` resolved (a module inherits its parent pom's properties; a value
left unknown is not guessed), ``<dependencies>`` with their scope
(test -> dev, provided/system -> build, ``<optional>true`` -> optional).

What a pom inherits is a dependency too: its ``<parent>`` is a ``build`` requirement (the
parent is built and installed first), and so is each BOM it imports
(``<scope>import</scope>`` in ``<dependencyManagement>``); the other managed entries
only pin versions and are not requirements. A parent or BOM may be in another repo of
the fleet (jackson-databind's parent is jackson-bom's ``base`` module): what cannot be
resolved in the checkout (a ``${property}`` its parent chain defines, a version its
parents manage) is resolved by :meth:`PomLinks.link` once every checkout is read.

Artifacts compare as Maven Central publishes them for sbt's ``%%``: ``cats-core_2.13``,
``cats-core_3`` and ``cats-core_sjs1_2.13`` are all ``cats-core`` (:func:`jvm_package`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, ManifestProblem,
                                               Manifests, Package, Requirement, inside, leaves,
                                               outside, read_text, unreadable)


_MAVEN_SCOPES = {"compile": "runtime", "runtime": "runtime", "test": "dev",
                 "provided": "build", "system": "build"}
#: A Scala cross-version suffix (sbt's ``%%``/``%%%``), with Scala.js/Native's platform.
_SCALA_SUFFIX = re.compile(r"(?:_(?:sjs\d+|native\d+(?:\.\d+)?))?_(?:2\.1[0-3]|3)\Z")


def jvm_package(group: str, artifact: str) -> Package:
    """A JVM package's key, its Scala version suffix off (``cats-core_2.13`` is
    ``cats-core``): Maven, Gradle and sbt name the same artifacts."""
    return ("maven", f"{group.strip()}:{_SCALA_SUFFIX.sub('', artifact.strip())}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text else None


@dataclass
class Pom:
    """What a pom gives the poms inheriting from it (or importing it, a BOM)."""

    key: str  # group:artifact
    parent: str | None  # the parent's group:artifact
    values: dict[str, str]  # its properties and project.* values, as written
    managed: dict[str, str]  # dependencyManagement: group:artifact -> version as written
    imports: list[str] = field(default_factory=list)  # BOMs it imports


@dataclass
class _Pending:
    """A dependency of a pom not known in its checkout alone."""

    pom: str  # the key of the pom it is written in
    file: str
    line: int
    group: str
    artifact: str
    version: str | None  # as written (``${...}`` unresolved; None: managed elsewhere)
    type: str
    index: int | None = None  # its requirement, when group and artifact are known


@dataclass
class PomLinks:
    """The poms of one checkout and what they left to the fleet (see the module)."""

    out: Manifests
    poms: dict[str, Pom] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)

    def link(self, fleet: Sequence[Manifests], shared: dict[object, object]) -> None:
        if not self.pending:
            return
        if (found := shared.get(PomLinks)) is None:
            found = shared[PomLinks] = _fleet_poms(fleet)
        # its own poms first, then the fleet's (the first checkout's of a key)
        index = ChainMap(self.poms, cast("dict[str, Pom]", found))
        for p in self.pending:
            _settle(self.out, p, index)
        self.pending = []


def _fleet_poms(fleet: Sequence[Manifests]) -> dict[str, Pom]:
    """Every pom of the fleet by its key, the first checkout's where two share one."""
    index: dict[str, Pom] = {}
    for m in fleet:
        for other in m.links:
            if isinstance(other, PomLinks):
                for key, pom in other.poms.items():
                    index.setdefault(key, pom)
    return index


def _chain(key: str, index: Mapping[str, Pom]) -> list[Pom]:
    """The pom ``key`` and its ancestors the fleet has, nearest first."""
    out: list[Pom] = []
    seen: set[str] = set()
    here: str | None = key
    while here is not None and here in index and here not in seen:
        seen.add(here)
        out.append(index[here])
        here = index[here].parent
    return out


def _values(chain: list[Pom]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pom in reversed(chain):  # ancestors first; a child's own value wins
        values.update({k: v for k, v in pom.values.items()
                       if pom is chain[0] or not k.startswith(("project.", "pom."))})
    return values


def _managed(art: str, chain: list[Pom], index: Mapping[str, Pom]) -> str | None:
    """The version a pom's chain (or a BOM it imports) manages for ``art``."""
    values = _values(chain)
    for pom in chain:
        if art in pom.managed:
            return _resolve(pom.managed[art], values)
    for pom in chain:
        for bom in pom.imports:
            bom_chain = _chain(bom, index)
            if bom_chain and art in bom_chain[0].managed:
                return _resolve(bom_chain[0].managed[art], _values(bom_chain))
    return None


def _settle(out: Manifests, p: _Pending, index: Mapping[str, Pom]) -> None:
    chain = _chain(p.pom, index)
    if not chain:
        return
    values = _values(chain)
    group, artifact = _resolve(p.group, values), _resolve(p.artifact, values)
    if not group or not artifact:
        return  # still unknown: its note stays
    key = f"{group}:{artifact}"
    version = _resolve(p.version, values) if p.version else _managed(key, chain, index)
    if p.index is not None:
        r = out.requires[p.index]
        out.requires[p.index] = dataclasses.replace(r, constraint=version)
        return
    out.requires.append(Requirement(jvm_package(group, artifact), p.type, p.file, p.line,
                                    version))
    out.problems[:] = [q for q in out.problems
                       if not (q.file == p.file and q.line == p.line and not q.whole)]


def pom(out: Manifests, root: Path, rel: str, text: str) -> None:
    links = PomLinks(out)
    out.links.append(links)
    inherited = _pom_project(links, rel, text)  # its <properties>: its modules inherit them
    project = ET.fromstring(text)
    modules = _child(project, "modules")
    for module in (modules if modules is not None else ()):
        if not module.text or not module.text.strip():
            continue
        name = module.text.strip()
        if leaves(name) or not inside(root / name, root):  # not this repo's
            line = Lines(text).find([f"<module>{name}</module>"])
            outside(out, rel, line, f"module {name!r}")
            if not name.startswith(("/", "~")):  # another repo the reactor builds, by path
                member = os.path.normpath(root / name)
                out.requires.append(Requirement((PATH_ECOSYSTEM, member), "build", rel, line,
                                                None, member))
            continue
        manifest = root / name / "pom.xml"
        member_rel = os.path.relpath(manifest, root)
        member_text: str | None = None
        try:
            member_text = read_text(manifest, root)
            if member_text is not None:
                out.files.add(member_rel)
                _pom_project(links, member_rel, member_text, inherited)
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
        own = _text(project, key)
        inherited = _text(parent, key) if key != "artifactId" else None
        for name, value in ((f"project.parent.{key}", _text(parent, key)),
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


def _pom_project(links: PomLinks, rel: str, text: str,
                 inherited: dict[str, str] | None = None) -> dict[str, str]:
    """Read one pom; its property values (for its modules, whose parent it is)."""
    out = links.out
    project = ET.fromstring(text)
    lines = Lines(text)
    values = _properties(project, inherited or {})
    group = _resolve(values.get("project.groupId"), values)
    artifact = _resolve(_text(project, "artifactId"), values)
    key = f"{group}:{artifact}" if group and artifact else f"{rel}:"
    if group and artifact:
        out.provides.add(jvm_package(group, artifact))
    parent_key = _parent(out, rel, project, lines, values)
    managed, imports = _management(out, rel, project, lines, values)
    links.poms[key] = Pom(key, parent_key, _properties(project, {}), managed, imports)
    deps = _child(project, "dependencies")
    for dep in deps if deps is not None else ():
        if _local(dep.tag) == "dependency":
            _dependency(links, key, rel, dep, lines, values)
    return {k: v for k, v in values.items() if not k.startswith(("project.", "pom."))
            and k not in ("groupId", "artifactId", "version")}


def _parent(out: Manifests, rel: str, project: ET.Element, lines: Lines,
            values: dict[str, str]) -> str | None:
    """The ``<parent>``: a ``build`` requirement (the parent pom is built first)."""
    parent = _child(project, "parent")
    g, a = _text(parent, "groupId"), _text(parent, "artifactId")
    if parent is None or not g or not a:
        return None
    out.requires.append(Requirement(
        jvm_package(g, a), "build", rel, lines.find([f"<artifactId>{a}</artifactId>"],
                                                    ["<parent>"]),
        _resolve(_text(parent, "version"), values)))
    return f"{g}:{a}"


def _management(out: Manifests, rel: str, project: ET.Element, lines: Lines,
                values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``<dependencyManagement>``: the versions it pins (as written), and the BOMs it
    imports, each a ``build`` requirement."""
    managed: dict[str, str] = {}
    imports: list[str] = []
    dm = _child(project, "dependencyManagement")
    deps = _child(dm, "dependencies") if dm is not None else None
    for dep in deps if deps is not None else ():
        raw_g, raw_a = _text(dep, "groupId"), _text(dep, "artifactId")
        version = _text(dep, "version")
        if not raw_g or not raw_a:
            continue
        g, a = _resolve(raw_g, values), _resolve(raw_a, values)
        if (_text(dep, "scope") or "") != "import":
            if g and a and version:
                managed[f"{g}:{a}"] = version
            continue
        if g and a:
            imports.append(f"{g}:{a}")
            out.requires.append(Requirement(
                jvm_package(g, a), "build", rel,
                lines.find([f"<artifactId>{raw_a}</artifactId>"], ["<dependencyManagement>"]),
                _resolve(version, values)))
    return managed, imports


def _dependency(links: PomLinks, key: str, rel: str, dep: ET.Element, lines: Lines,
                values: dict[str, str]) -> None:
    out = links.out
    raw_g, raw_a = _text(dep, "groupId"), _text(dep, "artifactId")
    raw_v = _text(dep, "version")
    scope = _text(dep, "scope") or "compile"
    if not raw_g or not raw_a or scope not in _MAVEN_SCOPES:
        return
    optional = (_text(dep, "optional") or "").lower() == "true"
    type_ = "optional" if optional and scope != "test" else _MAVEN_SCOPES[scope]
    line = lines.find([f"<artifactId>{raw_a}</artifactId>"], ["<dependencies>"])
    g, a = _resolve(raw_g, values), _resolve(raw_a, values)
    if not g or not a:  # a property no pom of this checkout defines: the fleet may
        links.pending.append(_Pending(key, rel, line, raw_g, raw_a, raw_v, type_))
        out.problems.append(ManifestProblem(
            rel, line, f"dependency {raw_g[:40]}:{raw_a[:40]} names a property no pom of "
            "this repo defines: not read", whole=False))
        return
    version = _resolve(raw_v, values)
    if version is None:  # ${...} unknown here, or managed by a parent: the fleet may know
        links.pending.append(_Pending(key, rel, line, raw_g, raw_a, raw_v, type_,
                                      len(out.requires)))
    out.requires.append(Requirement(jvm_package(g, a), type_, rel, line, version))
