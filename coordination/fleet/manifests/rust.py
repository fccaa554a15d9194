"""Cargo.toml with ``tomllib``: the package, its dependency tables (plain, build, dev,
per target), renames (``package = ...``), the workspace's dependencies and members.
Crate names compare with ``_`` as ``-``, as crates.io does."""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from coordination.fleet.manifests.base import Lines, Manifests, Package, Requirement, read_text


def _crate(name: str) -> Package:
    return ("cargo", name.lower().replace("_", "-"))


def cargo(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = tomllib.loads(text)
    _cargo_package(out, rel, text, data)
    workspace = data.get("workspace") or {}
    lines = Lines(text)
    for dep, spec in (workspace.get("dependencies") or {}).items():
        _cargo_dep(out, rel, lines, "workspace.dependencies", dep, spec, "runtime")
    for pattern in workspace.get("members") or ():
        for member in sorted(glob.glob(os.path.join(glob.escape(str(root)), pattern))):
            manifest = Path(member) / "Cargo.toml"
            member_rel = os.path.relpath(manifest, root)
            try:
                member_text = read_text(manifest)
                if member_text is not None:
                    _cargo_package(out, member_rel, member_text, tomllib.loads(member_text))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.problems.append(f"{member_rel}: {exc}")


_CARGO_SECTIONS = (("dependencies", "runtime"), ("build-dependencies", "build"),
                   ("dev-dependencies", "dev"))


def _cargo_package(out: Manifests, rel: str, text: str, data: Mapping[str, object]) -> None:
    lines = Lines(text)
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


def _cargo_dep(out: Manifests, rel: str, lines: Lines, header: str, dep: str, spec: object,
               type_: str) -> None:
    # `alias = { package = "real-name" }` renames a dependency.
    real = spec.get("package") if isinstance(spec, dict) else None
    version = spec if isinstance(spec, str) else (
        spec.get("version") if isinstance(spec, dict) else None)
    line = lines.find([f"[{header}.{dep}]", f"{dep} =", f"{dep}=", f'"{dep}"'],
                      [f"[{header}]"])
    out.requires.append(Requirement(_crate(real if isinstance(real, str) else dep), type_, rel,
                                    line, version if isinstance(version, str) else None))
