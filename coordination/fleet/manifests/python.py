"""Python manifests: pyproject.toml (PEP 621, PEP 735 groups, Poetry, build-system) with
``tomllib``, setup.cfg with ``configparser``, requirements*.txt line by line; every
requirement string through ``packaging`` (extras, markers, version ranges), every name
compared as ``canonicalize_name`` does (``Acme_Core`` is ``acme-core``)."""

from __future__ import annotations

import configparser
import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement as PyRequirement
from packaging.utils import canonicalize_name

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, ManifestProblem,
                                               Manifests, Mark, Requirement, key, local_path,
                                               quoted, table, toml_loads)


_TEST_GROUPS = {"test", "tests", "testing", "pytest", "check", "ci", "coverage"}
_DEV_GROUPS = {"dev", "develop", "development", "lint", "linting", "docs", "doc", "typing",
               "types", "mypy", "style", "format", "pre-commit", "tools"}
_BUILD_GROUPS = {"build", "builds", "packaging", "release"}


def group_type(name: str, other: str = "optional") -> str:
    """The dependency type a group's name says: ``test``/``tests``/``dev``/``lint``/
    ``docs`` -> dev (what checks the project, not what it runs with), ``build`` ->
    build; any other name -> ``other``: an extra (``postgres``) is optional, a
    dependency group (PEP 735, Poetry) is dev."""
    n = name.lower().replace("_", "-")
    if (n in _TEST_GROUPS or n.startswith("test") or n in _DEV_GROUPS
            or n.startswith("dev")):
        return "dev"
    if n in _BUILD_GROUPS:
        return "build"
    return other


def _file_type(rel: str) -> str:
    """A requirements file's type from its name: requirements-test.txt -> dev."""
    n = Path(rel).stem.lower()
    for word, kind in (("test", "dev"), ("dev", "dev"), ("lint", "dev"), ("doc", "dev"),
                       ("build", "build")):
        if word in n.replace("requirements", ""):
            return kind
    return "runtime"


_NAME = re.compile(r"\s*[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?\s*")


def as_written(spec: str, req: PyRequirement) -> str | None:
    """The version range of ``spec`` exactly as written (``>=2.1, <3``, not
    ``packaging``'s ``<3,>=2.1``): what follows the name and extras, before the
    marker; None when there is none (or the requirement is a URL)."""
    if req.url or not req.specifier:
        return None
    head = spec.split(";", 1)[0]
    m = _NAME.match(head)
    rest = head[m.end():].strip() if m else ""
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    return rest or str(req.specifier)


@functools.lru_cache(maxsize=4096)
def _parsed(spec: str) -> PyRequirement:
    """``packaging``'s reading of a requirement string, once per string (a fleet's
    manifests name the same ones again and again: ``pytest>=7``)."""
    return PyRequirement(spec)


def _python_req(out: Manifests, root: Path, spec: str, type_: str, rel: str, lines: Lines,
                after: Iterable[Mark] = ()) -> None:
    try:
        req = _parsed(spec)
    except InvalidRequirement as exc:
        out.problems.append(ManifestProblem(rel, lines.find(quoted(spec), after),
                                            f"{spec!r} is not a requirement: {exc}", False))
        return
    # ``name @ file:///srv/core``: a direct reference to a local checkout.
    path = local_path(root, req.url) if req.url else None
    out.requires.append(Requirement(
        ("python", canonicalize_name(req.name)), type_, rel,
        lines.find(quoted(spec) + [req.name], after), as_written(spec, req), path))


def pyproject(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = toml_loads(text)
    lines = Lines(text)
    project = data.get("project") or {}
    poetry = (data.get("tool") or {}).get("poetry") or {}
    name = project.get("name") or poetry.get("name")
    if isinstance(name, str):
        out.provides.add(("python", canonicalize_name(name)))
    for spec in project.get("dependencies") or ():
        _python_req(out, root, spec, "runtime", rel, lines, [table("project"), key("dependencies")])
    for group, specs in (project.get("optional-dependencies") or {}).items():
        for spec in specs or ():
            _python_req(out, root, spec, group_type(group), rel, lines,
                        [table("project.optional-dependencies"), key(group)])
    # PEP 735 dependency groups; an entry may include another group ({include-group}).
    for group, specs in (data.get("dependency-groups") or {}).items():
        for spec in specs or ():
            if isinstance(spec, str):
                _python_req(out, root, spec, group_type(group, "dev"), rel, lines,
                            [table("dependency-groups"), key(group)])
    for spec in (data.get("build-system") or {}).get("requires") or ():
        _python_req(out, root, spec, "build", rel, lines, [table("build-system"), key("requires")])
    # Poetry: tables of name = constraint.
    tables: list[tuple[str, Mapping[str, object], str]] = [
        ("tool.poetry.dependencies", poetry.get("dependencies") or {}, "runtime"),
        ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies") or {}, "dev"),
    ]
    for group, body in (poetry.get("group") or {}).items():
        tables.append((f"tool.poetry.group.{group}.dependencies",
                       (body or {}).get("dependencies") or {}, group_type(group, "dev")))
    for header, deps, type_ in tables:
        for dep_name, spec in deps.items():
            if dep_name.lower() == "python":
                continue
            constraint = spec if isinstance(spec, str) else (
                spec.get("version") if isinstance(spec, dict) else None)
            where = spec.get("path") if isinstance(spec, dict) else None  # {path = "../core"}
            # {optional = true}: installed only with one of the project's extras.
            optional = isinstance(spec, dict) and spec.get("optional") is True
            out.requires.append(Requirement(
                ("python", canonicalize_name(dep_name)),
                "optional" if optional and type_ == "runtime" else type_, rel,
                lines.find([key(dep_name), table(f"{header}.{dep_name}"), dep_name],
                           [table(header)]),
                constraint if isinstance(constraint, str) else None,
                local_path(root, where) if isinstance(where, str) else None))
    # uv: [tool.uv.sources] name = { path = "../core" } says where a requirement of the
    # project comes from.
    sources = ((data.get("tool") or {}).get("uv") or {}).get("sources") or {}
    paths: dict[str, str | None] = {
        str(canonicalize_name(n)): local_path(root, v["path"]) for n, v in sources.items()
        if isinstance(v, dict) and isinstance(v.get("path"), str)}
    if paths:
        out.requires[:] = [
            dataclasses.replace(r, path=paths[r.package[1]])
            if r.file == rel and r.package[0] == "python" and paths.get(r.package[1]) else r
            for r in out.requires]


_VCS = ("git+", "hg+", "svn+", "bzr+")
_EDITABLE = re.compile(r"^(?:-e|--editable)(?:\s+|=|(?=[.~/]))(.+)$")


def _named(ref: str) -> str | None:
    """The package a VCS or archive URL names by its ``#egg=NAME`` fragment."""
    frag = urlparse(ref).fragment
    for part in frag.split("&"):
        key, _, value = part.partition("=")
        if key == "egg" and value:
            return value.split("[", 1)[0]
    return None


def _local_line(out: Manifests, root: Path, rel: str, line: str, n: int, type_: str) -> bool:
    """A requirements line that names a local path or a URL rather than a PEP 508
    requirement: ``-e ../core``, ``../core[dev]``, ``file:../core``,
    ``git+https://...#egg=core``. Recorded (a path is matched to the checkout it is
    in) and True; False for a line that is none of those."""
    editable = _EDITABLE.match(line)
    ref = editable.group(1).strip() if editable else line
    if not editable and not ref.startswith((".", "/", "~", "file:", *_VCS, "http:", "https:")):
        return False
    name = _named(ref)
    target = ref.split("#", 1)[0]
    if not target.startswith(("file:", *_VCS, "http:", "https:")):
        target = re.sub(r"\[[^\]]*\]$", "", target)  # ./pkg[dev]: the extras
    path = local_path(root, target)
    if path is not None:
        package = ("python", canonicalize_name(name)) if name else (PATH_ECOSYSTEM, path)
        out.requires.append(Requirement(package, type_, rel, n, None, path))
    elif name:
        out.requires.append(Requirement(("python", canonicalize_name(name)), type_, rel, n))
    return True


def requirements_txt(out: Manifests, root: Path, rel: str, text: str) -> None:
    """requirements*.txt: PEP 508 lines, and the local paths and URLs pip takes there
    (``-e ../core``, ``file:``, ``#egg=``); relative paths are taken from the
    checkout's top, where pip is run."""
    type_ = _file_type(rel)
    logical = ""
    first = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not logical:
            first = n
        part = raw.split(" #", 1)[0] if " #" in raw else raw
        if part.lstrip().startswith("#"):
            part = ""
        if part.rstrip().endswith("\\"):
            logical += part.rstrip()[:-1] + " "
            continue
        # Per-requirement options (--hash=..., --config-settings) are pip's, not PEP 508.
        line = (logical + part).split(" --", 1)[0].strip()
        logical = ""
        if not line or _local_line(out, root, rel, line, first, type_):
            continue
        if line.startswith("-"):  # other options (-r, -c, --index-url...) name no package
            continue
        try:
            req = _parsed(line)
        except InvalidRequirement as exc:
            out.problems.append(ManifestProblem(rel, first,
                                                f"{line!r} is not a requirement: {exc}", False))
            continue
        out.requires.append(Requirement(("python", canonicalize_name(req.name)), type_, rel,
                                        first, as_written(line, req),
                                        local_path(root, req.url) if req.url else None))


def setup_cfg(out: Manifests, root: Path, rel: str, text: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    cfg.read_string(text, source=rel)
    lines = Lines(text)
    if cfg.has_option("metadata", "name"):
        out.provides.add(("python", canonicalize_name(cfg.get("metadata", "name"))))
    keys = (("install_requires", "runtime"), ("setup_requires", "build"),
            ("tests_require", "dev"))
    for option, type_ in keys:
        if cfg.has_option("options", option):
            for spec in _cfg_list(cfg.get("options", option)):
                _python_req(out, root, spec, type_, rel, lines,
                            [table("options"), key(option, "=:")])
    if cfg.has_section("options.extras_require"):
        for group, value in cfg.items("options.extras_require"):
            for spec in _cfg_list(value):
                _python_req(out, root, spec, group_type(group), rel, lines,
                            [table("options.extras_require"), key(group, "=:")])


def _cfg_list(value: str) -> list[str]:
    items = []
    for line in value.replace(",\n", "\n").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            items.append(line)
    return items
