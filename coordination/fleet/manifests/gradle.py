"""Gradle builds, Groovy and Kotlin DSL alike, read statically (a build script is a
program: coord never runs one).

``settings.gradle(.kts)`` names the projects (``include(":okhttp")``, a project's
``name`` and ``projectDir`` set there, ``rootProject.name``), the version catalogs
(``gradle/libs.versions.toml``, read with ``tomllib``, and any ``versionCatalogs {
create("x") { from(files(...)) } }``) and the included builds: one in
``pluginManagement`` holds convention plugins (``build-logic``, as ``buildSrc``), whose
``*.gradle(.kts)`` scripts may set the ``group`` of the projects applying them; another
outside the checkout is a repo the build is made with (a dependency by path).

Each project provides ``group:artifact``: its group from its own script, its
``gradle.properties`` (``GROUP``, ``group``), a convention plugin it applies, or the root
project's ``allprojects``/``subprojects``/``gradle.properties``; its artifact from
``POM_ARTIFACT_ID``, a publication's ``artifactId`` or ``coordinates(...)``, else its
name. Its ``dependencies { }`` give requirements typed by configuration:
``implementation``/``api``/``runtimeOnly`` runtime, ``test*`` (and any configuration or
source set named for tests: ``androidTestImplementation``, ``jvmTest { }``) dev,
``compileOnly``/``annotationProcessor``/``kapt``/``ksp``/a buildscript's ``classpath``
build, ``platform(...)`` build (a BOM pins, depends on nothing). Notations read: a
coordinate string (``$version`` from ``ext``, ``val``/``def`` strings or
``gradle.properties``), ``group: ..., name: ..., version: ...``, a catalog accessor
(``libs.okhttp.client``, ``libs.bundles.x``), ``kotlin("stdlib")``; ``project(":x")``
and ``projects.x`` are the repo's own. Anything else is a note with its file and line.
A project in an example or test directory (``samples/crawler``) provides nothing and
its requirements are ``dev``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from coordination.fleet.manifests import gradle_deps as deps
from coordination.fleet.manifests import gradle_script as gs
from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Manifests, Requirement,
                                               as_dev, incidental, inside, leaves, note,
                                               outside, read_text, toml_loads, unreadable)
from coordination.fleet.manifests.java import jvm_package
from coordination.fleet.manifests.scan import Token, balanced, tokens

SCRIPTS = ("build.gradle.kts", "build.gradle")
SETTINGS = ("settings.gradle.kts", "settings.gradle")
@dataclass
class Project:
    path: str  # ":retrofit-converters:gson"; ":" for the root
    directory: str  # relative to the checkout ("." for the root)
    name: str


@dataclass
class _Build:
    """One Gradle build of the checkout being read (the checkout's own, or one it
    includes), with what its settings said."""

    out: Manifests
    root: Path  # the checkout
    base: str  # the build's directory, relative to the checkout ("." at the top)
    projects: dict[str, Project] = field(default_factory=dict)
    catalogs: dict[str, deps.Catalog] = field(default_factory=dict)
    plugin_builds: list[str] = field(default_factory=list)
    #: Convention plugin id -> (its groups, the plugins it applies).
    conventions: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    #: Each directory's gradle.properties, read once.
    props: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The builds read so far (included builds may include each other).
    seen: set[str] = field(default_factory=set)

    def rel(self, *parts: str) -> str:
        return os.path.normpath(os.path.join(self.base, *parts))


def read_build(out: Manifests, root: Path, base: str = ".",
               seen: set[str] | None = None) -> None:
    """Read the Gradle build at ``base`` (its settings, catalogs, convention plugins,
    and every project's script), once (``seen``: builds may include each other)."""
    seen = set() if seen is None else seen
    if base in seen:
        return
    seen.add(base)
    build = _Build(out, root, base, seen=seen)
    settings = _text(build, SETTINGS)
    if settings is not None:
        _settings(build, *settings)
    if ":" not in build.projects:
        top = "." if base == "." else os.path.basename(base)
        build.projects[":"] = Project(":", ".", os.path.basename(root) if top == "." else top)
    if "libs" not in build.catalogs:
        _catalog(build, "libs", "gradle/libs.versions.toml")
    for plugin_build in build.plugin_builds:
        _conventions(build, plugin_build)
    root_props = _properties(build, ".")
    root_script = _script(build, build.projects[":"], root_props)
    inherited = dict(root_props)
    if root_script is not None:
        inherited.update(root_script.values)
    for project in sorted(build.projects.values(), key=lambda p: p.path):
        script = root_script if project.path == ":" else _script(
            build, project, {**inherited, **_properties(build, project.directory)})
        _provide(build, project, script, root_script, root_props)


def _text(build: _Build, names: Iterable[str]) -> tuple[str, str] | None:
    """(rel, text) of the first of ``names`` in the build's directory; a file that
    cannot be read is a problem (none read then)."""
    for name in names:
        got = _read(build, build.rel(name))
        if got is not None:
            return build.rel(name), got
    return None


def _read(build: _Build, rel: str) -> str | None:
    text: str | None = None
    try:
        text = read_text(build.root / rel, build.root)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        build.out.problems.append(unreadable(rel, exc, text))
        return None
    if text is not None:
        build.out.files.add(rel)
    return text


def _tokens(build: _Build, rel: str, text: str) -> list[Token] | None:
    try:
        return balanced(list(tokens(text)))
    except ValueError as exc:  # Unreadable: a string, comment or bracket never closed
        build.out.problems.append(unreadable(rel, exc, text))
        return None


# -- settings ------------------------------------------------------------------------------
def _settings(build: _Build, rel: str, text: str) -> None:
    toks = _tokens(build, rel, text)
    if toks is None:
        return
    renames: dict[str, str] = {}
    dirs: dict[str, str] = {}
    root_name: str | None = None
    for st in gs.statements(toks):
        t = list(st.tokens)
        if not t:
            continue
        head = gs.dotted(t[:3]) or ""
        if head == "rootProject.name" and len(t) > 3 and t[3].is_op("="):
            root_name = gs.string_of(t[4:], {}) or root_name
        elif t[0].is_name("include") and len(t) > 1:
            _include(build, rel, t)
        elif t[0].is_name("includeBuild") and len(t) > 1:
            _include_build(build, rel, t, "pluginManagement" in st.blocks)
        elif t[0].is_name("project") and len(t) > 1 and t[1].is_op("("):
            _project_setting(t, renames, dirs)
        elif t[0].is_name("from") and "versionCatalogs" in st.blocks:
            _catalog_from(build, rel, st, t)
        elif "versionCatalogs" in st.blocks or any(x.is_name("versionCatalogs") for x in t):
            _catalog_chained(build, rel, t)
    for path, project in list(build.projects.items()):
        project.name = renames.get(path, project.name)
        project.directory = dirs.get(path, project.directory)
        if leaves(build.rel(project.directory)):  # projectDir = file("../x"): not this repo's
            outside(build.out, rel, None, f"project {path}'s directory {project.directory!r}")
            del build.projects[path]
    build.projects[":"] = Project(":", ".", root_name or os.path.basename(
        build.root if build.base == "." else build.base))


def _include(build: _Build, rel: str, t: list[Token]) -> None:
    args = gs.call_args(t, 1)[0] if t[1].is_op("(") else t[1:]
    for arg in gs.split_args(args):
        value = gs.string_of(arg, {})
        if value is None:
            note(build.out, rel, t[0].line, "include of a project path computed by the "
                 "script: not read (write the path as a string)")
            continue
        path = value if value.startswith(":") else ":" + value
        parts = [p for p in path.split(":") if p]
        if parts:
            build.projects[path] = Project(path, os.path.join(*parts), parts[-1])


def _project_setting(t: list[Token], renames: dict[str, str], dirs: dict[str, str]) -> None:
    """``project(":x").name = "y"`` and ``project(":x").projectDir = file("d")``."""
    args, after = gs.call_args(t, 1)
    path = gs.string_of(args, {})
    if path is None or after + 3 > len(t) or not t[after].is_op("."):
        return
    attr, rest = t[after + 1], t[after + 2:]
    if not rest or not rest[0].is_op("="):
        return
    rest = rest[1:]
    if attr.is_name("name"):
        value = gs.string_of(rest, {})
        if value:
            renames[path if path.startswith(":") else ":" + path] = value
    elif attr.is_name("projectDir"):
        strs = [x.text for x in rest if x.kind == "str" and not x.interpolated]
        if strs:
            dirs[path if path.startswith(":") else ":" + path] = os.path.normpath(strs[-1])


def _include_build(build: _Build, rel: str, t: list[Token], plugins: bool) -> None:
    args = gs.call_args(t, 1)[0] if t[1].is_op("(") else t[1:]
    where = gs.string_of(gs.split_args(args)[0], {}) if args else None
    if where is None:
        note(build.out, rel, t[0].line, "includeBuild of a path computed by the script: "
             "not read")
        return
    target = os.path.normpath(build.root / build.base / where)
    if leaves(os.path.relpath(target, build.root)) or not inside(target, build.root):
        outside(build.out, rel, t[0].line, f"included build {where!r}")
        build.out.requires.append(Requirement((PATH_ECOSYSTEM, target), "build", rel,
                                              t[0].line, None, target))
    elif plugins:
        build.plugin_builds.append(build.rel(where))
    else:  # a build of the repo's own, composed with this one
        read_build(build.out, build.root, build.rel(where), build.seen)


def _catalog_from(build: _Build, rel: str, st: gs.Statement, t: list[Token]) -> None:
    """``versionCatalogs { create("x") { from(files("gradle/x.versions.toml")) } }``"""
    name = st.blocks[-1] if st.blocks else ""
    strs = [x.text for x in t if x.kind == "str" and not x.interpolated]
    if name and strs and strs[-1].endswith(".toml"):
        _catalog(build, name, os.path.relpath(
            os.path.normpath(os.path.join(os.path.dirname(rel), strs[-1])), build.base))


def _catalog_chained(build: _Build, rel: str, t: list[Token]) -> None:
    """``create("libs").from(files("../gradle/libs.versions.toml"))`` (in a
    ``versionCatalogs`` block, or ``versionCatalogs.create(...)``): the catalog named
    by the call, from the file ``from`` names."""
    for i in range(len(t) - 5):
        if not (t[i].is_name("create", "register", "maybeCreate") and t[i + 1].is_op("(")
                and t[i + 2].kind == "str" and t[i + 3].is_op(")") and t[i + 4].is_op(".")
                and t[i + 5].is_name("from")):
            continue
        args, _ = gs.call_args(t, i + 6) if i + 6 < len(t) and t[i + 6].is_op("(") \
            else ([], 0)
        strs = [x.text for x in args if x.kind == "str" and not x.interpolated]
        if strs and strs[-1].endswith(".toml"):
            _catalog(build, t[i + 2].text, os.path.relpath(
                os.path.normpath(os.path.join(os.path.dirname(rel), strs[-1])), build.base))
        elif args:
            note(build.out, rel, t[i].line, f"version catalog {t[i + 2].text!r} from "
                 "something other than a .toml file: not read")


# -- catalogs ------------------------------------------------------------------------------
def _catalog(build: _Build, name: str, rel_in_build: str) -> None:
    rel = build.rel(rel_in_build)
    text = _read(build, rel)
    if text is None:
        return
    try:
        build.catalogs[name] = deps.parse_catalog(toml_loads(text))
    except ValueError as exc:
        build.out.problems.append(unreadable(rel, exc, text))


# -- projects ------------------------------------------------------------------------------
def _properties(build: _Build, directory: str) -> dict[str, str]:
    """A ``gradle.properties``: ``key=value`` (or ``key: value``), ``#``/``!`` comments."""
    if directory in build.props:
        return build.props[directory]
    text = _read(build, build.rel(directory, "gradle.properties"))
    out: dict[str, str] = build.props.setdefault(directory, {})
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _script(build: _Build, project: Project, values: dict[str, str]) -> gs.Script | None:
    got = _text_in(build, project.directory)
    if got is None:
        return None
    rel, text = got
    toks = _tokens(build, rel, text)
    if toks is None:
        return None
    script = gs.read_script(toks, values)
    first = len(build.out.requires)
    deps.requirements(build.out, rel, script, build.catalogs)
    if incidental(rel):
        as_dev(build.out, first)
    for line, what in script.unknown:
        note(build.out, rel, line, f"{what} set by the script from a value coord cannot "
             "know: not read")
    if any("kotlin" in p for p in script.plugins):
        build.out.tags.add("kotlin")
    script.plugins[:] = [_plugin_id(build, p) for p in script.plugins]
    return script


def _text_in(build: _Build, directory: str) -> tuple[str, str] | None:
    for name in SCRIPTS:
        rel = build.rel(directory, name)
        text = _read(build, rel)
        if text is not None:
            return rel, text
    return None


def _plugin_id(build: _Build, plugin: str) -> str:
    if plugin.startswith("alias:"):
        parts = plugin[len("alias:"):].split(".")
        cat = build.catalogs.get(parts[0])
        if cat is not None and len(parts) > 2 and parts[1] == "plugins":
            return cat.plugins.get(".".join(parts[2:]).lower(), plugin)
    return plugin


def _conventions(build: _Build, plugin_build: str) -> None:
    """The precompiled script plugins of an included plugin build (``build-logic``):
    ``src/main/kotlin/x.y.gradle.kts`` is plugin ``x.y``. Its own build script's
    dependencies are what the build is made with (``build``)."""
    sub = _Build(build.out, build.root, plugin_build, catalogs=build.catalogs)
    own = _text_in(sub, ".")
    if own is not None:
        toks = _tokens(sub, *own)
        if toks is not None:
            first = len(build.out.requires)
            deps.requirements(build.out, own[0], gs.read_script(toks), build.catalogs)
            as_dev(build.out, first, "build")
    for src in ("src/main/kotlin", "src/main/groovy"):
        directory = build.root / plugin_build / src
        try:
            names = sorted(e.name for e in os.scandir(directory) if e.is_file())
        except OSError:
            continue
        for name in names:
            if not name.endswith((".gradle.kts", ".gradle")):
                continue
            rel = os.path.join(plugin_build, src, name)
            text = _read(build, rel)
            toks = _tokens(build, rel, text) if text is not None else None
            if toks is None:
                continue
            script = gs.read_script(toks)
            deps.requirements(build.out, rel, script, build.catalogs)
            pid = name[:-len(".gradle.kts")] if name.endswith(".kts") else name[:-len(".gradle")]
            build.conventions[pid] = ([g for g, _ in script.groups],
                                      [_plugin_id(build, p) for p in script.plugins])
            if any("kotlin" in p for p in script.plugins):
                build.out.tags.add("kotlin")


def _convention_group(build: _Build, plugins: list[str]) -> str | None:
    seen: set[str] = set()
    queue = list(plugins)
    while queue:
        pid = queue.pop(0)
        if pid in seen or pid not in build.conventions:
            continue
        seen.add(pid)
        groups, applies = build.conventions[pid]
        if groups:
            return groups[-1]
        queue.extend(applies)
    return None


def _provide(build: _Build, project: Project, script: gs.Script | None,
             root_script: gs.Script | None, root_props: dict[str, str]) -> None:
    if incidental(os.path.join(project.directory, "x")):
        return
    own = _properties(build, project.directory) if project.path != ":" else root_props
    group = next((g for g, where in reversed(script.groups) if where == ()), None) \
        if script is not None else None
    group = group or own.get("GROUP") or own.get("group")
    if group is None and script is not None:
        group = _convention_group(build, script.plugins)
    if group is None and root_script is not None:
        scopes = (("allprojects",),) if project.path == ":" else (("subprojects",),
                                                                   ("allprojects",))
        for scope in scopes:
            group = next((g for g, where in reversed(root_script.groups) if where == scope),
                         None) or group
            if group:
                break
    group = group or root_props.get("GROUP") or root_props.get("group")
    if not group:
        return
    artifact = own.get("POM_ARTIFACT_ID") or (script.artifact if script else None) \
        or project.name
    build.out.provides.add(jvm_package(group, artifact))


