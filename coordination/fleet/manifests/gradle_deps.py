"""What a Gradle build's dependency statements name: the configuration's type, each
notation read (a coordinate string, ``group: ..., name: ...``, a version catalog
accessor, ``platform(...)``, ``kotlin("x")``), and the version catalogs themselves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from coordination.fleet.manifests import gradle_script as gs
from coordination.fleet.manifests.base import Manifests, Requirement, note, unknown_versions
from coordination.fleet.manifests.java import jvm_package
from coordination.fleet.manifests.scan import Token, interpolate

_RUNTIME = frozenset({"implementation", "api", "compile", "runtime", "runtimeonly"})


def _shown(args: list[Token]) -> str:
    """A notation as written, near enough (at most 60 characters)."""
    out = ""
    for t in args:
        text = repr(t.text) if t.kind == "str" else t.text
        if out and t.kind in ("name", "str", "num") and out[-1] not in ".([ " \
                and not out.endswith(("(", ".")):
            out += " "
        out += text + (" " if t.is_op(",") else "")
    return out.strip()[:60]


_NO_PACKAGE = frozenset({"project", "files", "fileTree", "gradleApi", "localGroovy",
                         "gradleTestKit", "sourceSets", "npm", "devNpm"})



@dataclass
class Catalog:
    libraries: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    bundles: dict[str, list[str]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)



def _tests(name: str) -> bool:
    """A configuration or source set for tests: ``testImplementation``,
    ``androidTestImplementation``, ``jvmTest`` (not ``latestImplementation``)."""
    return name.startswith("test") or "Test" in name


def conf_type(conf: str, blocks: tuple[str, ...], buildscript: bool) -> str:
    """The dependency type a configuration (in those blocks) declares."""
    c = conf.lower()
    if buildscript:
        return "build"
    if _tests(conf) or any(_tests(b) for b in blocks):
        return "dev"
    if c in _RUNTIME or c.endswith(("implementation", "api", "runtimeonly")):
        return "runtime" if not c.endswith("compileonlyapi") else "build"
    return "build"  # compileOnly, annotationProcessor, kapt, ksp, errorprone, ...



def accessor(alias: str) -> str:
    return alias.replace("-", ".").replace("_", ".").lower()



def _version(spec: object, versions: dict[str, object]) -> str | None:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):
        if isinstance(spec.get("ref"), str):
            return _version(versions.get(spec["ref"]), versions)
        for k in ("strictly", "require", "prefer"):
            if isinstance(spec.get(k), str):
                return str(spec[k])
    return None


def _library(spec: object, versions: dict[str, object]) -> tuple[str, str, str | None] | None:
    if isinstance(spec, str):
        parts = spec.split(":")
        return (parts[0], parts[1], parts[2] if len(parts) > 2 else None) \
            if len(parts) >= 2 else None
    if not isinstance(spec, dict):
        return None
    module = spec.get("module")
    if isinstance(module, str) and ":" in module:
        group, artifact = module.split(":", 1)
    elif isinstance(spec.get("group"), str) and isinstance(spec.get("name"), str):
        group, artifact = spec["group"], spec["name"]
    else:
        return None
    version = spec.get("version")
    if isinstance(version, dict) or isinstance(version, str):
        v = _version(version, versions)
    else:
        ref = spec.get("version.ref")
        v = _version(versions.get(ref), versions) if isinstance(ref, str) else None
    return group, artifact, v



def parse_catalog(data: dict[str, object]) -> Catalog:
    """A version catalog (``gradle/libs.versions.toml``, read by ``tomllib``)."""
    raw_versions = data.get("versions")
    versions = dict(raw_versions) if isinstance(raw_versions, dict) else {}
    cat = Catalog()
    libraries = data.get("libraries")
    for alias, spec in (libraries.items() if isinstance(libraries, dict) else ()):
        got = _library(spec, versions)
        if got is not None:
            cat.libraries[accessor(alias)] = got
    bundles = data.get("bundles")
    for alias, members in (bundles.items() if isinstance(bundles, dict) else ()):
        if isinstance(members, list):
            cat.bundles[accessor(alias)] = [accessor(m) for m in members if isinstance(m, str)]
    plugins = data.get("plugins")
    for alias, spec in (plugins.items() if isinstance(plugins, dict) else ()):
        pid = spec.split(":", 1)[0] if isinstance(spec, str) else (
            spec.get("id") if isinstance(spec, dict) else None)
        if isinstance(pid, str):
            cat.plugins[accessor(alias)] = pid
    return cat


def requirements(out: Manifests, rel: str, script: gs.Script,
                 catalogs: dict[str, Catalog]) -> None:
    """The requirements of a script's dependency statements (each notation that cannot
    be known a note at its line)."""
    unknown: list[tuple[int, str]] = []
    for conf, args, line, blocks in script.deps:
        unknown.extend((line, parts[2]) for parts in (
            t.text.split("@", 1)[0].split(":") for t in args
            if t.kind == "str" and t.interpolated
            and interpolate(t.text.split("@", 1)[0], script.values) is None)
            if len(parts) > 2 and "$" in parts[2] and "$" not in parts[0] + parts[1])
        base_type = conf_type(conf, blocks, "buildscript" in blocks)
        for got in _notations(catalogs, args, script.values):
            if isinstance(got, str):
                note(out, rel, line, f"{conf} {_shown(args)}: {got}: not read")
                continue
            group, artifact, version, platform = got
            type_ = "build" if platform and base_type != "dev" else base_type
            out.requires.append(Requirement(jvm_package(group, artifact), type_, rel,
                                                  line, version))
    unknown_versions(out, rel, unknown)


def _notations(catalogs: dict[str, Catalog], args: list[Token], values: dict[str, str]
               ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    """Each package the notation ``args`` names: (group, artifact, version, platform),
    or a sentence saying why one cannot be known."""
    parts = gs.split_args(args)
    if parts and len(parts[0]) >= 2 and parts[0][0].kind == "name" \
            and parts[0][1].is_op(":", "="):
        yield from _map_notation(parts, values)
        return
    for part in parts:
        yield from _notation(catalogs, part, values, False)


def _map_notation(parts: list[list[Token]], values: dict[str, str]
                  ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    named: dict[str, str | None] = {}
    for part in parts:
        if len(part) >= 3 and part[0].kind == "name" and part[1].is_op(":", "="):
            named[part[0].text] = gs.string_of(part[2:], values)
    group, name = named.get("group"), named.get("name")
    if group and name:
        yield group, name, named.get("version"), False
    elif "name" in named or "group" in named:
        yield "a group or name the script computes"


def _notation(catalogs: dict[str, Catalog], part: list[Token], values: dict[str, str], platform: bool
              ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    first = part[0]
    if first.kind == "str":
        yield from _coordinate(first, values, platform)
        return
    if first.kind != "name":
        yield "not a coordinate"
        return
    if len(part) > 1 and part[1].is_op("("):
        inner, after = gs.call_args(part, 1)
        call = first.text
        if call in ("platform", "enforcedPlatform"):
            for sub in gs.split_args(inner)[:1]:
                yield from _notation(catalogs, sub, values, True)
        elif call in ("testFixtures", "variantOf", "create"):
            for sub in gs.split_args(inner)[:1]:
                yield from _notation(catalogs, sub, values, platform)
        elif call == "kotlin" and inner and inner[0].kind == "str":
            rest = gs.split_args(inner)
            version = gs.string_of(rest[1], values) if len(rest) > 1 else None
            yield "org.jetbrains.kotlin", "kotlin-" + inner[0].text, version, platform
        elif call in _NO_PACKAGE:
            return
        else:
            yield "not a coordinate, a version catalog entry or a project"
        return
    name = gs.dotted(part)
    if name is None:
        if gs.dotted(part[:3]) and len(part) > 3 and part[3].is_op("("):
            yield from _find_library(catalogs, part, platform)
            return
        yield "not a coordinate, a version catalog entry or a project"
        return
    yield from _named(catalogs, name, values, platform)


def _find_library(catalogs: dict[str, Catalog], part: list[Token], platform: bool
                  ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    """``libs.findLibrary("okhttp").get()`` (a convention plugin's catalog lookup)."""
    cat = catalogs.get(part[0].text)
    method = part[2].text
    args = gs.call_args(part, 3)[0]
    if cat is None or method != "findLibrary" or not args or args[0].kind != "str":
        yield "not a coordinate, a version catalog entry or a project"
        return
    got = cat.libraries.get(accessor(args[0].text))
    if got is None:
        yield f"no library {args[0].text!r} in the version catalog"
        return
    yield got[0], got[1], got[2], platform


def _named(catalogs: dict[str, Catalog], name: str, values: dict[str, str], platform: bool
           ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    for prefix in ("rootProject.", "project."):  # rootProject.libs.junit
        if name.startswith(prefix) and name[len(prefix):].split(".", 1)[0] in catalogs:
            name = name[len(prefix):]
    head, _, rest = name.partition(".")
    if head == "projects" or name in ("project",):
        return
    cat = catalogs.get(head)
    if cat is not None and rest:
        yield from _from_catalog(cat, head, rest, platform)
        return
    if name in values:
        yield from _coordinate(Token("str", values[name], 0), {}, platform)
        return
    yield "not a coordinate, a version catalog entry or a project"


def _from_catalog(cat: Catalog, head: str, rest: str, platform: bool
                  ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    key = rest.lower()
    for suffix in (".get", ".asprovider"):
        if key.endswith(suffix):
            key = key[:-len(suffix)]
    if key.startswith("bundles."):
        members = cat.bundles.get(key[len("bundles."):])
        if members is None:
            yield f"no bundle {key[len('bundles.'):]!r} in the version catalog {head!r}"
            return
        for member in members:
            got = cat.libraries.get(member)
            if got is not None:
                yield got[0], got[1], got[2], platform
        return
    if key.startswith(("plugins.", "versions.")):
        return
    got = cat.libraries.get(key)
    if got is None:
        yield f"no library {key!r} in the version catalog {head!r}"
        return
    yield got[0], got[1], got[2], platform


def _coordinate(tok: Token, values: dict[str, str], platform: bool
                ) -> Iterable[tuple[str, str, str | None, bool] | str]:
    """``group:artifact[:version[:classifier]][@ext]``; with ``$x`` in it, each part
    that is known (a version left unknown is no version)."""
    text = tok.text.split("@", 1)[0]
    if tok.interpolated:
        resolved = interpolate(text, values)
        if resolved is None:
            parts = text.split(":")
            if len(parts) >= 2 and "$" not in parts[0] and "$" not in parts[1]:
                yield parts[0], parts[1], None, platform
            else:
                yield "a group or artifact the script computes"
            return
        text = resolved
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        yield "not group:artifact[:version]"
        return
    yield parts[0].strip(), parts[1].strip(), (parts[2].strip() or None) \
        if len(parts) > 2 else None, platform
