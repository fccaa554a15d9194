"""Cargo.toml with ``tomllib``: the package, its dependency tables (plain, build, dev,
per target; an ``optional = true`` one is optional: built only with a feature), renames (``package = ...``), path dependencies (``{ path = "../x" }``: the
checkout there is the provider, as npm's ``file:`` and Poetry's ``{path}`` are), the
workspace's dependencies and members (a member's ``x = { workspace = true }`` is the
workspace's ``x`` with the member's section's type: ``[workspace.dependencies]`` only
declares; one no member inherits is kept as a runtime requirement of its own), and
``[patch.<registry>]`` (and the older
``[replace]``): a patch by a local path points the crate it patches at the checkout
there, and one for a crate no table names is still built from that checkout (type
``build``). Crate names compare with ``_`` as ``-``, as crates.io does."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, Manifests, Package,
                                               Requirement, as_dev, incidental, key, leaves,
                                               member_dirs, outside, read_member, shaped,
                                               table, toml_loads)


def _crate(name: str) -> Package:
    return ("cargo", name.lower().replace("_", "-"))


#: ``[workspace.dependencies]``: crate key -> (its spec, the path it names, absolute,
#: relative to the workspace's Cargo.toml as Cargo reads it); what a member's
#: ``{ workspace = true }`` inherits.
Inherited = dict[str, tuple[object, str | None]]


def cargo(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = toml_loads(text)
    first = len(out.requires)
    workspace = data.get("workspace") or {}
    declared = workspace.get("dependencies") or {}
    inherited: Inherited = {dep: (spec, _path(root, rel, spec)) for dep, spec in
                            (declared.items() if isinstance(declared, dict) else ())}
    used: set[str] = set()
    _cargo_package(out, root, rel, text, data, inherited, used)
    lines = Lines(text)
    for pattern in workspace.get("members") or ():
        if not isinstance(pattern, str):
            continue
        if leaves(pattern):  # a member outside the checkout is not this repo's
            line = lines.find([f'"{pattern}"', f"'{pattern}'"], [table("workspace")])
            outside(out, rel, line, f"workspace member {pattern!r}")
            if not any(c in pattern for c in "*?[") and not pattern.strip().startswith(
                    ("/", "~")):  # another repo the workspace builds with, by path
                member = os.path.normpath((root / rel).parent / pattern.strip())
                out.requires.append(Requirement((PATH_ECOSYSTEM, member), "build", rel, line,
                                                None, member))
            continue
        for member in member_dirs(root, pattern):
            at = len(out.requires)
            read_member(out, root, Path(member) / "Cargo.toml",
                        lambda member_rel, text: _cargo_package(
                            out, root, member_rel, text, toml_loads(text), inherited, used))
            if incidental(os.path.relpath(Path(member) / "Cargo.toml", root)):
                as_dev(out, at)  # an example's crate: what it needs is no runtime need
    for dep, (spec, _) in inherited.items():
        if dep not in used:  # declared, inherited by no member read: as before, runtime
            _cargo_dep(out, root, rel, lines, "workspace.dependencies", dep, spec, "runtime")
    _patches(out, root, rel, lines, data, first)


_CARGO_SECTIONS = (("dependencies", "runtime"), ("build-dependencies", "build"),
                   ("dev-dependencies", "dev"))


def _cargo_package(out: Manifests, root: Path, rel: str, text: str,
                   data: Mapping[str, object], inherited: Inherited | None = None,
                   used: set[str] | None = None) -> None:
    lines = Lines(text)
    package = data.get("package")
    if isinstance(package, dict) and isinstance(package.get("name"), str):
        out.provides.add(_crate(package["name"]))
    tables: list[tuple[str, Mapping[str, object], str]] = []
    for section, type_ in _CARGO_SECTIONS:
        deps = shaped(data.get(section), dict, f"[{section}]",
                      partial(lines.find, [key(section), table(section), f"[[{section}]]"]))
        if deps:
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
            path = None
            if isinstance(spec, dict) and spec.get("workspace") is True and inherited \
                    and dep in inherited:
                base, path = inherited[dep]
                # the workspace's version, path and rename; the member's optional, features
                spec = {**({"version": base} if isinstance(base, str) else
                           base if isinstance(base, dict) else {}),
                        **{k: v for k, v in spec.items() if k != "workspace"}}
                if used is not None:
                    used.add(dep)
            _cargo_dep(out, root, rel, lines, header, dep, spec, type_, path)


def _path(root: Path, rel: str, spec: object) -> str | None:
    """The checkout path a ``{ path = "..." }`` names, relative to the manifest's
    directory (Cargo's rule: ``crates/x`` and ``../x`` alike), absolute."""
    where = spec.get("path") if isinstance(spec, dict) else None
    if not isinstance(where, str) or not where.strip():
        return None
    return os.path.normpath((root / rel).parent / Path(where).expanduser())


def _cargo_dep(out: Manifests, root: Path, rel: str, lines: Lines, header: str, dep: str,
               spec: object, type_: str, path: str | None = None) -> None:
    """One requirement; ``path``: the one an inherited spec names (relative to the
    workspace's Cargo.toml, not this one), else the spec's own."""
    # `alias = { package = "real-name" }` renames a dependency.
    real = spec.get("package") if isinstance(spec, dict) else None
    version = spec if isinstance(spec, str) else (
        spec.get("version") if isinstance(spec, dict) else None)
    # `dep = ...`, `dep.workspace = true` (a dotted key), `[header.dep]`
    line = lines.find([key(dep, "=."), table(f"{header}.{dep}"), f'"{dep}"'], [table(header)])
    if type_ == "runtime" and isinstance(spec, dict) and spec.get("optional") is True:
        type_ = "optional"  # built only with a feature that names it
    out.requires.append(Requirement(_crate(real if isinstance(real, str) else dep), type_, rel,
                                    line, version if isinstance(version, str) else None,
                                    path or _path(root, rel, spec)))


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _patches(out: Manifests, root: Path, rel: str, lines: Lines, data: Mapping[str, object],
             first: int) -> None:
    """``[patch.<registry>]`` and ``[replace]`` by a local path: the crate patched is
    built from the checkout there. The requirements read from this Cargo.toml and its
    members (from ``first`` on) naming the crate get that path; a crate none names (a
    transitive one) is a ``build`` requirement of its own."""
    patched: list[tuple[str, str, int]] = []  # (crate, path, line)
    patch = data.get("patch")
    if isinstance(patch, dict):
        for registry, entries in patch.items():
            if not isinstance(entries, dict):
                continue
            header = f"patch.{registry}" if _BARE.match(registry) else f'patch."{registry}"'
            for dep, spec in entries.items():
                path = _path(root, rel, spec)
                if path is not None:
                    real = spec.get("package") if isinstance(spec, dict) else None
                    patched.append((real if isinstance(real, str) else dep, path, lines.find(
                        [key(dep), table(f"{header}.{dep}")], [table(header)])))
    replace = data.get("replace")
    if isinstance(replace, dict):
        for spec_id, spec in replace.items():  # "foo:1.2.3" = { path = "../foo" }
            path = _path(root, rel, spec)
            if path is not None:
                crate = spec_id.split(":", 1)[0]
                patched.append((crate, path, lines.find([key(spec_id)], [table("replace")])))
    for crate, path, line in patched:
        package = _crate(crate)
        hit = False
        for i in range(first, len(out.requires)):
            r = out.requires[i]
            if r.package == package and r.path is None:
                out.requires[i] = dataclasses.replace(r, path=path)
                hit = True
        if not hit:
            out.requires.append(Requirement(package, "build", rel, line, None, path))
