"""Python manifests: pyproject.toml (PEP 621, PEP 735 groups, Poetry, build-system) with
``tomllib``, setup.cfg with ``configparser``, setup.py with ``ast`` (never run), Pipfile,
requirements*.txt line by line (beside the package's own metadata, an environment
file: dev); every
requirement string through ``packaging`` (extras, markers, version ranges), every name
compared as ``canonicalize_name`` does (``Acme_Core`` is ``acme-core``)."""

from __future__ import annotations

import ast
import configparser
import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement as PyRequirement
from packaging.utils import canonicalize_name

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, ManifestProblem,
                                               Manifests, Mark, Requirement, Unreadable, key,
                                               local_path, note, quoted, shaped, table,
                                               toml_loads)


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


def _at(lines: Lines, *marks: Mark) -> Callable[[], int | None]:
    """The line of a key, found only when a message needs it: each mark a pattern, or
    a name (``"[tool.poetry]"`` a table header, ``"poetry"`` a key) made one then."""
    def find() -> int | None:
        built = [table(m[1:-1]) if isinstance(m, str) and m.startswith("[") else
                 key(m) if isinstance(m, str) else m for m in marks]
        return lines.find([built[-1]], built[:-1])
    return find


def pyproject(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = toml_loads(text)
    lines = Lines(text)
    project = shaped(data.get("project"), dict, "[project]", _at(lines, "project"))
    tool = shaped(data.get("tool"), dict, "[tool]", _at(lines, "tool"))
    poetry = shaped(tool.get("poetry"), dict, "[tool.poetry]", _at(lines, "poetry"))
    name = project.get("name") or poetry.get("name")
    if isinstance(name, str):
        out.provides.add(("python", canonicalize_name(name)))
    after = [table("project"), key("dependencies")]
    for spec in _specs(project.get("dependencies"), "[project] dependencies", lines, after):
        _python_req(out, root, spec, "runtime", rel, lines, after)
    extras = shaped(project.get("optional-dependencies"), dict,
                    "[project.optional-dependencies]", _at(lines, "optional-dependencies"))
    for group, specs in extras.items():
        after = [table("project.optional-dependencies"), key(group)]
        for spec in _specs(specs, f"optional-dependencies {group}", lines, after):
            _python_req(out, root, spec, group_type(group), rel, lines, after)
    # PEP 735 dependency groups; an entry may include another group ({include-group}).
    groups = shaped(data.get("dependency-groups"), dict, "[dependency-groups]",
                    _at(lines, "[dependency-groups]"))
    for group, specs in groups.items():
        after = [table("dependency-groups"), key(group)]
        for spec in shaped(specs, list, f"dependency-groups {group}", _at(lines, *after)):
            if isinstance(spec, str):
                _python_req(out, root, spec, group_type(group, "dev"), rel, lines, after)
    build = shaped(data.get("build-system"), dict, "[build-system]",
                   _at(lines, "build-system"))
    after = [table("build-system"), key("requires")]
    for spec in _specs(build.get("requires"), "[build-system] requires", lines, after):
        _python_req(out, root, spec, "build", rel, lines, after)
    # Poetry: tables of name = constraint.
    tables: list[tuple[str, Mapping[str, object], str]] = [
        (f"tool.poetry.{k}", shaped(poetry.get(k), dict, f"[tool.poetry.{k}]",
                                    _at(lines, "[tool.poetry]", k)), t)
        for k, t in (("dependencies", "runtime"), ("dev-dependencies", "dev"))]
    for group, body in shaped(poetry.get("group"), dict, "[tool.poetry.group]",
                              _at(lines, "group")).items():
        header = f"tool.poetry.group.{group}.dependencies"
        tables.append((header, shaped(shaped(body, dict, f"[tool.poetry.group.{group}]",
                                             _at(lines, group)).get("dependencies"),
                                      dict, f"[{header}]", _at(lines, f"[{header}]")),
                       group_type(group, "dev")))
    for header, deps, type_ in tables:
        for dep_name, entry in deps.items():
            if dep_name.lower() == "python":
                continue
            constraint = entry if isinstance(entry, str) else (
                entry.get("version") if isinstance(entry, dict) else None)
            where = entry.get("path") if isinstance(entry, dict) else None  # {path = "../core"}
            # {optional = true}: installed only with one of the project's extras.
            optional = isinstance(entry, dict) and entry.get("optional") is True
            out.requires.append(Requirement(
                ("python", canonicalize_name(dep_name)),
                "optional" if optional and type_ == "runtime" else type_, rel,
                lines.find([key(dep_name), table(f"{header}.{dep_name}"), dep_name],
                           [table(header)]),
                constraint if isinstance(constraint, str) else None,
                local_path(root, where) if isinstance(where, str) else None))
    # uv: [tool.uv.sources] name = { path = "../core" } says where a requirement of the
    # project comes from.
    uv = shaped(tool.get("uv"), dict, "[tool.uv]", _at(lines, "uv"))
    sources = shaped(uv.get("sources"), dict, "[tool.uv.sources]", _at(lines, "sources"))
    paths: dict[str, str | None] = {
        str(canonicalize_name(n)): local_path(root, v["path"]) for n, v in sources.items()
        if isinstance(v, dict) and isinstance(v.get("path"), str)}
    if paths:
        out.requires[:] = [
            dataclasses.replace(r, path=paths[r.package[1]])
            if r.file == rel and r.package[0] == "python" and paths.get(r.package[1]) else r
            for r in out.requires]


def _specs(value: object, where: str, lines: Lines, after: Sequence[Mark]) -> list[str]:
    """A list of requirement strings (PEP 508), as the format says; anything else
    :class:`Unreadable` at its line."""
    specs: list[object] = shaped(value, list, where, _at(lines, *after))
    out: list[str] = []
    for spec in specs:
        if not isinstance(spec, str):
            raise Unreadable(f"{where}: requirement strings expected, not "
                             f"{type(spec).__name__}", lines.find([after[-1]], after[:-1]))
        out.append(spec)
    return out


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


def environment_txt(out: Manifests, root: Path, rel: str, text: str) -> None:
    """A requirements file beside the package's own metadata (pyproject, setup.py,
    setup.cfg): the environment the package is developed and tested in (``-e .[dev]``,
    pinned tools), not what it needs at runtime (that is its metadata's): every
    requirement there is ``dev``."""
    first = len(out.requires)
    requirements_txt(out, root, rel, text)
    out.requires[first:] = [r if r.type == "dev" else dataclasses.replace(r, type="dev")
                            for r in out.requires[first:]]


def pipfile(out: Manifests, root: Path, rel: str, text: str) -> None:
    """Pipfile (TOML): ``[packages]`` runtime, ``[dev-packages]`` dev."""
    data = toml_loads(text)
    lines = Lines(text)
    for section, type_ in (("packages", "runtime"), ("dev-packages", "dev")):
        deps = data.get(section) or {}
        if not isinstance(deps, dict):
            continue
        for name, spec in deps.items():
            constraint = spec if isinstance(spec, str) and spec != "*" else (
                spec.get("version") if isinstance(spec, dict) else None)
            where = spec.get("path") if isinstance(spec, dict) else None
            out.requires.append(Requirement(
                ("python", canonicalize_name(name)), type_, rel,
                lines.find([key(name), name], [table(section)]),
                constraint if isinstance(constraint, str) and constraint != "*" else None,
                local_path(root, where) if isinstance(where, str) else None))


_SETUP_KEYS = (("install_requires", "runtime"), ("setup_requires", "build"),
               ("tests_require", "dev"))


def setup_py(out: Manifests, root: Path, rel: str, text: str) -> None:
    """setup.py, read with ``ast`` and never run: the ``setup(...)`` call's ``name``,
    ``install_requires``, ``extras_require``, ``setup_requires`` and ``tests_require``,
    each a literal or a module-level name assigned one. A value the script computes
    (a function's result, ``**kwargs``) is a note, never guessed."""
    tree = ast.parse(text, rel)
    assigned: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
    call = next((n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and _called(n.func) == "setup"), None)
    if call is None:
        note(out, rel, None, "no setup(...) call: nothing read")
        return
    lines = Lines(text)
    for kw in call.keywords:
        value = assigned.get(kw.value.id, kw.value) if isinstance(kw.value, ast.Name) \
            else kw.value
        if kw.arg == "name":
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.provides.add(("python", canonicalize_name(value.value)))
            else:
                note(out, rel, kw.value.lineno, "setup(name=...) is computed by the script: "
                     "the package provides nothing coord can match")
        elif kw.arg in dict(_SETUP_KEYS):
            _setup_list(out, root, rel, lines, value, dict(_SETUP_KEYS)[kw.arg], kw.arg)
        elif kw.arg == "extras_require":
            if not isinstance(value, ast.Dict):
                note(out, rel, kw.value.lineno, "extras_require is computed by the script: "
                     "not read")
                continue
            for k, v in zip(value.keys, value.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    _setup_list(out, root, rel, lines, v, group_type(k.value.split(":")[0]),
                                f"extras_require[{k.value!r}]")
        elif kw.arg is None:
            note(out, rel, kw.value.lineno, "setup(**...): what it holds is computed by the "
                 "script: not read")


def _called(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _setup_list(out: Manifests, root: Path, rel: str, lines: Lines, value: ast.expr,
                type_: str, what: str) -> None:
    items = [value] if isinstance(value, ast.Constant) else (
        list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else None)
    if items is None:
        note(out, rel, value.lineno, f"{what} is computed by the script: not read")
        return
    for item in items:
        if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
            note(out, rel, item.lineno, f"an entry of {what} is computed by the script: "
                 "not read")
            continue
        for spec in item.value.splitlines():  # a string of several lines: one a line
            spec = spec.split("#", 1)[0].strip()
            if spec:
                before = len(out.requires)
                _python_req(out, root, spec, type_, rel, lines)
                if len(out.requires) > before:
                    out.requires[-1] = dataclasses.replace(out.requires[-1], line=item.lineno)
