"""Python manifests: pyproject.toml (PEP 621, PEP 735 groups, Poetry, build-system) with
``tomllib``, setup.cfg with ``configparser``, requirements*.txt line by line; every
requirement string through ``packaging`` (extras, markers, version ranges), every name
compared as ``canonicalize_name`` does (``Acme_Core`` is ``acme-core``)."""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement as PyRequirement
from packaging.utils import canonicalize_name

from coordination.fleet.manifests.base import Lines, Manifests, Requirement, quoted


_TEST_GROUPS = {"test", "tests", "testing", "pytest", "check", "ci", "coverage"}
_DEV_GROUPS = {"dev", "develop", "development", "lint", "linting", "docs", "doc", "typing",
               "types", "mypy", "style", "format", "pre-commit", "tools"}
_BUILD_GROUPS = {"build", "builds", "packaging", "release"}


def group_type(name: str) -> str:
    """The dependency type an optional group's name says: ``test``/``tests`` -> test,
    ``dev``/``lint``/``docs`` -> dev, ``build`` -> build; an extra (``postgres``) is
    optional at runtime -> runtime."""
    n = name.lower().replace("_", "-")
    if n in _TEST_GROUPS or n.startswith("test"):
        return "test"
    if n in _DEV_GROUPS or n.startswith("dev"):
        return "dev"
    if n in _BUILD_GROUPS:
        return "build"
    return "runtime"


def _file_type(rel: str) -> str:
    """A requirements file's type from its name: requirements-test.txt -> test."""
    n = Path(rel).stem.lower()
    for word, kind in (("test", "test"), ("dev", "dev"), ("lint", "dev"), ("doc", "dev"),
                       ("build", "build")):
        if word in n.replace("requirements", ""):
            return kind
    return "runtime"


def _python_req(out: Manifests, spec: str, type_: str, rel: str, lines: Lines,
                after: Iterable[str] = ()) -> None:
    try:
        req = PyRequirement(spec)
    except InvalidRequirement as exc:
        out.problems.append(f"{rel}: {spec!r} is not a requirement: {exc}")
        return
    out.requires.append(Requirement(
        ("python", canonicalize_name(req.name)), type_, rel,
        lines.find(quoted(spec) + [req.name], after), str(req.specifier) or None))


def pyproject(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = tomllib.loads(text)
    lines = Lines(text)
    project = data.get("project") or {}
    poetry = (data.get("tool") or {}).get("poetry") or {}
    name = project.get("name") or poetry.get("name")
    if isinstance(name, str):
        out.provides.add(("python", canonicalize_name(name)))
    for spec in project.get("dependencies") or ():
        _python_req(out, spec, "runtime", rel, lines, ["[project]", "dependencies"])
    for group, specs in (project.get("optional-dependencies") or {}).items():
        for spec in specs or ():
            _python_req(out, spec, group_type(group), rel, lines,
                        ["[project.optional-dependencies]", group])
    # PEP 735 dependency groups; an entry may include another group ({include-group}).
    for group, specs in (data.get("dependency-groups") or {}).items():
        for spec in specs or ():
            if isinstance(spec, str):
                _python_req(out, spec, group_type(group), rel, lines,
                            ["[dependency-groups]", group])
    for spec in (data.get("build-system") or {}).get("requires") or ():
        _python_req(out, spec, "build", rel, lines, ["[build-system]", "requires"])
    # Poetry: tables of name = constraint.
    tables: list[tuple[str, Mapping[str, object], str]] = [
        ("tool.poetry.dependencies", poetry.get("dependencies") or {}, "runtime"),
        ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies") or {}, "dev"),
    ]
    for group, body in (poetry.get("group") or {}).items():
        tables.append((f"tool.poetry.group.{group}.dependencies",
                       (body or {}).get("dependencies") or {}, group_type(group)))
    for header, deps, type_ in tables:
        for dep_name, spec in deps.items():
            if dep_name.lower() == "python":
                continue
            constraint = spec if isinstance(spec, str) else (
                spec.get("version") if isinstance(spec, dict) else None)
            out.requires.append(Requirement(
                ("python", canonicalize_name(dep_name)), type_, rel,
                lines.find([f"{dep_name} =", f"{dep_name}=", f'"{dep_name}"', dep_name],
                           [f"[{header}]"]),
                constraint if isinstance(constraint, str) else None))


def requirements_txt(out: Manifests, root: Path, rel: str, text: str) -> None:
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
        # Options (-r, -c, -e, --index-url...) and bare paths or URLs name no package.
        if not line or line.startswith(("-", ".", "/", "git+", "http:", "https:", "file:")):
            continue
        try:
            req = PyRequirement(line)
        except InvalidRequirement as exc:
            out.problems.append(f"{rel}:{first}: {line!r} is not a requirement: {exc}")
            continue
        out.requires.append(Requirement(("python", canonicalize_name(req.name)), type_, rel,
                                        first, str(req.specifier) or None))


def setup_cfg(out: Manifests, root: Path, rel: str, text: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    cfg.read_string(text, source=rel)
    lines = Lines(text)
    if cfg.has_option("metadata", "name"):
        out.provides.add(("python", canonicalize_name(cfg.get("metadata", "name"))))
    keys = (("install_requires", "runtime"), ("setup_requires", "build"),
            ("tests_require", "test"))
    for key, type_ in keys:
        if cfg.has_option("options", key):
            for spec in _cfg_list(cfg.get("options", key)):
                _python_req(out, spec, type_, rel, lines, ["[options]", key])
    if cfg.has_section("options.extras_require"):
        for group, value in cfg.items("options.extras_require"):
            for spec in _cfg_list(value):
                _python_req(out, spec, group_type(group), rel, lines,
                            ["[options.extras_require]", group])


def _cfg_list(value: str) -> list[str]:
    items = []
    for line in value.replace(",\n", "\n").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            items.append(line)
    return items
