"""What a checkout's manifests say it provides and requires (``coord init``).

Each ecosystem is read with its own parser: ``tomllib`` (pyproject.toml, Cargo.toml),
``packaging`` (Python requirement strings: extras, markers, version ranges), ``json``
(package.json), ``configparser`` (setup.cfg), ``xml.etree`` (pom.xml); go.mod has no
parser in the standard library and is read by its own line grammar (directives,
blocks, ``//`` comments, ``replace``). The parsers give values, not positions: the line
a requirement came from is found afterwards by looking for the value's text in the
file, in the section it was read from (line 1 when it cannot be found).

A package is named per ecosystem, normalised as that ecosystem compares names:
``("python", canonicalize_name(n))``, ``("npm", n)``, ``("go", module path)``,
``("cargo", n with '_' as '-')``, ``("maven", "group:artifact")``.
"""

from __future__ import annotations

import configparser
import glob
import json
import os
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement as PyRequirement
from packaging.utils import canonicalize_name

#: Package key: (ecosystem, normalised name).
Package = tuple[str, str]

#: Manifests larger than this are not read (a generated lock file named like one).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

#: What a repo is, from the names at its top level: tag -> file names (or suffixes).
TAG_FILES: dict[str, tuple[str, ...]] = {
    "python": ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "requirements.txt"),
    "node": ("package.json",),
    "typescript": ("tsconfig.json",),
    "go": ("go.mod",),
    "rust": ("Cargo.toml",),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts"),
    "docker": ("Dockerfile", "Containerfile", "docker-compose.yml", "docker-compose.yaml",
               "compose.yml", "compose.yaml"),
    "helm": ("Chart.yaml",),
    "ruby": ("Gemfile",),
}
TAG_SUFFIXES: dict[str, tuple[str, ...]] = {"terraform": (".tf",), "docker": (".dockerfile",)}


@dataclass(frozen=True)
class Requirement:
    """One package a manifest names: who needs it, how, and where it is written."""

    package: Package
    type: str  # runtime, build, dev, test
    file: str  # relative to the checkout
    line: int
    constraint: str | None = None
    #: go.mod ``replace X => ../path``: the checkout the requirement points at.
    path: str | None = None


@dataclass
class Manifests:
    """What one checkout's manifests say."""

    provides: set[Package] = field(default_factory=set)
    requires: list[Requirement] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    #: Manifests that could not be read: "file: why" (reported, never fatal).
    problems: list[str] = field(default_factory=list)


#: A manifest reader: (what it adds to, the checkout, the manifest's path in it, its text).
_Reader = Callable[[Manifests, Path, str, str], None]


def tags_of(names: Iterable[str]) -> set[str]:
    """The tags of a checkout whose top level holds ``names``."""
    out: set[str] = set()
    names = set(names)
    for tag, files in TAG_FILES.items():
        if names.intersection(files):
            out.add(tag)
    for tag, suffixes in TAG_SUFFIXES.items():
        if any(n.endswith(suffixes) for n in names):
            out.add(tag)
    if any(n.startswith("requirements") and n.endswith(".txt") for n in names):
        out.add("python")
    return out


def read(root: Path, names: Iterable[str] | None = None) -> Manifests:
    """Read every manifest at the top of the checkout ``root`` (``names``: the names
    there, when the caller listed them already)."""
    if names is None:
        names = [e.name for e in os.scandir(root)]
    names = set(names)
    out = Manifests(tags=tags_of(names))
    readers = [
        ("pyproject.toml", _pyproject), ("setup.cfg", _setup_cfg), ("package.json", _package_json),
        ("go.mod", _go_mod), ("Cargo.toml", _cargo), ("pom.xml", _pom),
    ]
    for name, reader in readers:
        if name in names:
            _guarded(out, root, name, reader)
    for name in sorted(names):
        if name.startswith("requirements") and name.endswith(".txt"):
            _guarded(out, root, name, _requirements_txt)
    if "requirements" in names and (root / "requirements").is_dir():
        for p in sorted((root / "requirements").glob("*.txt")):
            _guarded(out, root, f"requirements/{p.name}", _requirements_txt)
    return out


def _guarded(out: Manifests, root: Path, rel: str, reader: _Reader) -> None:
    try:
        text = _text(root / rel)
        if text is not None:
            reader(out, root, rel, text)
    except (OSError, UnicodeDecodeError, ValueError, ET.ParseError, configparser.Error,
            TypeError, AttributeError) as exc:
        # ValueError covers tomllib.TOMLDecodeError and json.JSONDecodeError.
        out.problems.append(f"{rel}: {exc}")


def _text(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
        return None
    return path.read_text(encoding="utf-8")


# -- locating a value's line ---------------------------------------------------------
class _Lines:
    """Finds the line of a value the parser gave, in the section it came from."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def line_at(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def find(self, needles: Iterable[str], after: Iterable[str] = ()) -> int:
        """The line of the first of ``needles`` found after each of ``after`` in
        turn (section headers, keys); 1 when none is found."""
        start = 0
        for mark in after:
            at = self.text.find(mark, start)
            if at >= 0:
                start = at + len(mark)
        for needle in needles:
            at = self.text.find(needle, start)
            if at >= 0:
                return self.line_at(at)
        for needle in needles:  # written elsewhere than expected (a dotted key...)
            at = self.text.find(needle)
            if at >= 0:
                return self.line_at(at)
        return 1


def _quoted(value: str) -> list[str]:
    return [f'"{value}"', f"'{value}'", value]


# -- Python ----------------------------------------------------------------------------
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


def _python_req(out: Manifests, spec: str, type_: str, rel: str, lines: _Lines,
                after: Iterable[str] = ()) -> None:
    try:
        req = PyRequirement(spec)
    except InvalidRequirement as exc:
        out.problems.append(f"{rel}: {spec!r} is not a requirement: {exc}")
        return
    out.requires.append(Requirement(
        ("python", canonicalize_name(req.name)), type_, rel,
        lines.find(_quoted(spec) + [req.name], after), str(req.specifier) or None))


def _pyproject(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = tomllib.loads(text)
    lines = _Lines(text)
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


def _requirements_txt(out: Manifests, root: Path, rel: str, text: str) -> None:
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


def _setup_cfg(out: Manifests, root: Path, rel: str, text: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    cfg.read_string(text, source=rel)
    lines = _Lines(text)
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


# -- Node ----------------------------------------------------------------------------
_NPM_SECTIONS = (("dependencies", "runtime"), ("peerDependencies", "runtime"),
                 ("optionalDependencies", "runtime"), ("devDependencies", "dev"))


def _package_json(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    _npm_package(out, rel, text, data)
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    for pattern in workspaces if isinstance(workspaces, list) else ():
        if not isinstance(pattern, str) or pattern.startswith("!"):
            continue
        for member in sorted(glob.glob(os.path.join(glob.escape(str(root)), pattern))):
            manifest = Path(member) / "package.json"
            member_rel = os.path.relpath(manifest, root)
            try:
                member_text = _text(manifest)
                if member_text is None:
                    continue
                member_data = json.loads(member_text)
                if isinstance(member_data, dict):
                    _npm_package(out, member_rel, member_text, member_data)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.problems.append(f"{member_rel}: {exc}")


def _npm_package(out: Manifests, rel: str, text: str, data: Mapping[str, object]) -> None:
    lines = _Lines(text)
    name = data.get("name")
    if isinstance(name, str) and name:
        out.provides.add(("npm", name.lower()))
    for section, type_ in _NPM_SECTIONS:
        deps = data.get(section)
        if not isinstance(deps, dict):
            continue
        for dep, spec in deps.items():
            out.requires.append(Requirement(
                ("npm", dep.lower()), type_, rel, lines.find([f'"{dep}"'], [f'"{section}"']),
                spec if isinstance(spec, str) else None))


# -- Go ------------------------------------------------------------------------------
def go_mod_lines(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, directive, arguments)`` of each statement of a go.mod, blocks
    (``require ( ... )``) unrolled, comments dropped, quoted paths unquoted."""
    block: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            yield n, block, _go_words(line)
            continue
        words = _go_words(line)
        if len(words) == 2 and words[1] == "(":
            block = words[0]
            continue
        yield n, words[0], words[1:]


def _go_words(line: str) -> list[str]:
    out: list[str] = []
    for w in line.split():
        out.append(w[1:-1] if len(w) >= 2 and w[0] == w[-1] and w[0] in "\"`" else w)
    return out


def _go_mod(out: Manifests, root: Path, rel: str, text: str) -> None:
    requires: dict[str, tuple[int, str | None]] = {}
    replaces: dict[str, tuple[str, str | None]] = {}
    for n, directive, args in go_mod_lines(text):
        if directive == "module" and args:
            out.provides.add(("go", args[0]))
        elif directive == "require" and args:
            requires.setdefault(args[0], (n, args[1] if len(args) > 1 else None))
        elif directive == "replace" and "=>" in args:
            at = args.index("=>")
            old, to = args[0], args[at + 1:]
            if to:
                replaces[old] = (to[0], to[1] if len(to) > 1 else None)
    for module, (n, version) in requires.items():
        target, path = module, None
        if module in replaces:
            into, into_version = replaces[module]
            if into.startswith((".", "/")):
                # A local replacement: the module is the checkout at that path.
                path = os.path.normpath(root / into)
            else:
                target, version = into, into_version or version
        out.requires.append(Requirement(("go", target), "runtime", rel, n, version, path))


# -- Rust ------------------------------------------------------------------------------
def _crate(name: str) -> Package:
    return ("cargo", name.lower().replace("_", "-"))


def _cargo(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = tomllib.loads(text)
    _cargo_package(out, rel, text, data)
    workspace = data.get("workspace") or {}
    lines = _Lines(text)
    for dep, spec in (workspace.get("dependencies") or {}).items():
        _cargo_dep(out, rel, lines, "workspace.dependencies", dep, spec, "runtime")
    for pattern in workspace.get("members") or ():
        for member in sorted(glob.glob(os.path.join(glob.escape(str(root)), pattern))):
            manifest = Path(member) / "Cargo.toml"
            member_rel = os.path.relpath(manifest, root)
            try:
                member_text = _text(manifest)
                if member_text is not None:
                    _cargo_package(out, member_rel, member_text, tomllib.loads(member_text))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.problems.append(f"{member_rel}: {exc}")


_CARGO_SECTIONS = (("dependencies", "runtime"), ("build-dependencies", "build"),
                   ("dev-dependencies", "dev"))


def _cargo_package(out: Manifests, rel: str, text: str, data: Mapping[str, object]) -> None:
    lines = _Lines(text)
    package = data.get("package")
    if isinstance(package, dict) and isinstance(package.get("name"), str):
        out.provides.add(_crate(package["name"]))
    tables: list[tuple[str, Mapping[str, object], str]] = []
    for section, type_ in _CARGO_SECTIONS:
        deps = data.get(section)
        if isinstance(deps, dict):
            tables.append((section, deps, type_))
    targets = data.get("target")
    if isinstance(targets, dict):
        for target, body in targets.items():
            for section, type_ in _CARGO_SECTIONS:
                deps = body.get(section) if isinstance(body, dict) else None
                if isinstance(deps, dict):
                    tables.append((f"target.{target}.{section}", deps, type_))
    for header, deps, type_ in tables:
        for dep, spec in deps.items():
            _cargo_dep(out, rel, lines, header, dep, spec, type_)


def _cargo_dep(out: Manifests, rel: str, lines: _Lines, header: str, dep: str, spec: object,
               type_: str) -> None:
    # `alias = { package = "real-name" }` renames a dependency.
    real = spec.get("package") if isinstance(spec, dict) else None
    version = spec if isinstance(spec, str) else (
        spec.get("version") if isinstance(spec, dict) else None)
    line = lines.find([f"[{header}.{dep}]", f"{dep} =", f"{dep}=", f'"{dep}"'],
                      [f"[{header}]"])
    out.requires.append(Requirement(_crate(real if isinstance(real, str) else dep), type_, rel,
                                    line, version if isinstance(version, str) else None))


# -- Java (Maven) --------------------------------------------------------------------------
_MAVEN_SCOPES = {"compile": "runtime", "runtime": "runtime", "test": "test",
                 "provided": "build", "system": "build"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _child_text(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text else None


def _pom(out: Manifests, root: Path, rel: str, text: str) -> None:
    _pom_project(out, rel, text)
    project = ET.fromstring(text)
    modules = _child(project, "modules")
    for module in (modules if modules is not None else ()):
        if not module.text or not module.text.strip():
            continue
        manifest = root / module.text.strip() / "pom.xml"
        member_rel = os.path.relpath(manifest, root)
        try:
            member_text = _text(manifest)
            if member_text is not None:
                _pom_project(out, member_rel, member_text)
        except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
            out.problems.append(f"{member_rel}: {exc}")


def _pom_project(out: Manifests, rel: str, text: str) -> None:
    project = ET.fromstring(text)
    lines = _Lines(text)
    group = _child_text(project, "groupId") or _child_text(_child(project, "parent"), "groupId")
    artifact = _child_text(project, "artifactId")
    if group and artifact:
        out.provides.add(("maven", f"{group}:{artifact}"))
    deps = _child(project, "dependencies")  # not dependencyManagement: pins only
    for dep in deps if deps is not None else ():
        if _local(dep.tag) != "dependency":
            continue
        g, a = _child_text(dep, "groupId"), _child_text(dep, "artifactId")
        scope = _child_text(dep, "scope") or "compile"
        if not g or not a or scope not in _MAVEN_SCOPES:
            continue  # import scope: a BOM, not a dependency
        out.requires.append(Requirement(
            ("maven", f"{g}:{a}"), _MAVEN_SCOPES[scope], rel,
            lines.find([f"<artifactId>{a}</artifactId>"], ["<dependencies>"]),
            _child_text(dep, "version")))
