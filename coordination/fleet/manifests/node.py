"""Node manifests: package.json with ``json``, and the package.json of each member of
its ``workspaces`` or of ``pnpm-workspace.yaml``'s ``packages`` (every member is a
package the repo provides). A member outside the checkout (``../shared/*``) is
another repo the workspace builds with: a dependency on it, by path. So is a
``file:``/``link:`` version (``"@acme/ui": "file:../ui-kit"``). A peer marked
``optional`` in ``peerDependenciesMeta`` is ``optional``: npm installs it only when
something else does, as an ``optionalDependencies`` one."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, Manifests, Requirement,
                                               as_dev, incidental, json_key, leaves, local_path,
                                               member_dirs, outside, read_member, shaped)


_NPM_SECTIONS = (("dependencies", "runtime"), ("peerDependencies", "peer"),
                 ("optionalDependencies", "optional"), ("devDependencies", "dev"))


def package_json(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    _npm_package(out, root, rel, text, data)
    workspaces = data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    if isinstance(workspaces, list):
        members(out, root, rel, Lines(text), [w for w in workspaces if isinstance(w, str)])


def pnpm_workspace(out: Manifests, root: Path, rel: str, text: str) -> None:
    """pnpm-workspace.yaml: its ``packages`` globs, as package.json's workspaces."""
    data = yaml.safe_load(text)
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError("not a YAML mapping")
    packages = data.get("packages")
    if packages is not None and not isinstance(packages, list):
        raise ValueError("packages: a list of globs expected")
    members(out, root, rel, Lines(text), [p for p in packages or () if isinstance(p, str)])


def members(out: Manifests, root: Path, rel: str, lines: Lines, patterns: list[str]) -> None:
    """The packages of a workspace's member directories (globs; ``!glob`` excludes),
    each a package the repo provides. A member outside the checkout is never read: a
    plain path (``../ui-kit``) is another repo the workspace builds with, a dependency
    on it by path; a glob leaving it (``/**``, ``../*``) is not expanded (it could
    walk the whole filesystem); a member found through a symlink leading out is not
    followed (directories are walked without following symlinks). Each is noted."""
    excluded: set[str] = set()
    for pattern in patterns:
        if pattern.startswith("!") and not leaves(pattern[1:]):
            excluded.update(member_dirs(root, pattern[1:]))
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        line = lines.find([f'"{pattern}"', f"'{pattern}'", pattern])
        if leaves(pattern):
            outside(out, rel, line, f"workspace member {pattern!r}")
            if not glob.has_magic(pattern) and not pattern.strip().startswith(("/", "~")):
                member = os.path.normpath(root / pattern.strip())
                out.requires.append(Requirement((PATH_ECOSYSTEM, member), "build", rel, line,
                                                None, member))
            continue
        for member in member_dirs(root, pattern):
            if member in excluded:
                continue
            read_member(out, root, Path(member) / "package.json",
                        lambda member_rel, text: _npm_member(out, root, member_rel, text))


def _npm_member(out: Manifests, root: Path, rel: str, text: str) -> None:
    """A workspace member. One in an example, docs or test directory
    (``examples/basic``, ``playground``) is no part of what the repo ships: what it
    needs is ``dev``, and a private one provides nothing (``"name": "basic"`` in a
    dozen repos' examples is no package)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        return
    if not incidental(rel):
        _npm_package(out, root, rel, text, data)
        return
    first = len(out.requires)
    provided = set(out.provides)
    _npm_package(out, root, rel, text, data)
    as_dev(out, first)
    if data.get("private") is True:
        out.provides.intersection_update(provided)


def _npm_package(out: Manifests, root: Path, rel: str, text: str,
                 data: Mapping[str, object]) -> None:
    lines = Lines(text)
    here = (root / rel).parent
    name = data.get("name")
    if isinstance(name, str) and name:
        out.provides.add(("npm", name.lower()))
    meta = data.get("peerDependenciesMeta")
    optional_peers = {dep for dep, m in meta.items() if isinstance(m, dict)
                      and m.get("optional") is True} if isinstance(meta, dict) else set()
    for section, section_type in _NPM_SECTIONS:
        after = (json_key(section),)
        deps = shaped(data.get(section), dict, section, lambda: lines.find(after))
        for dep, spec in deps.items():
            type_ = "optional" if section_type == "peer" and dep in optional_peers \
                else section_type
            path = None
            package, constraint = dep, spec if isinstance(spec, str) else None
            if isinstance(spec, str) and spec.startswith(("file:", "link:", "portal:")):
                path = local_path(here, "file:" + spec.split(":", 1)[1])
            elif isinstance(spec, str) and spec.startswith("npm:"):
                package, constraint = npm_alias(spec)
            out.requires.append(Requirement(
                ("npm", package.lower()), type_, rel,
                lines.find((json_key(dep),), after), constraint, path))


def npm_alias(spec: str) -> tuple[str, str | None]:
    """The package and range an npm alias names: ``npm:@acme/button@^1`` ->
    ``("@acme/button", "^1")``; ``npm:lodash`` -> ``("lodash", None)``. The key it is
    written under (``"button"``) is only the name it is installed as."""
    rest = spec[len("npm:"):].strip()
    at = rest.find("@", 1)  # past a scope's leading "@"
    if at < 0:
        return rest, None
    return rest[:at], rest[at + 1:] or None
