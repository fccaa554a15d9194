"""Node manifests: package.json with ``json``, and the package.json of each member of
its ``workspaces`` or of ``pnpm-workspace.yaml``'s ``packages`` (every member is a
package the repo provides). A member outside the checkout (``../shared/*``) is
another repo the workspace builds with: a dependency on it, by path. So is a
``file:``/``link:`` version (``"@acme/ui": "file:../ui-kit"``)."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Lines, Manifests, Requirement,
                                               json_key, local_path, read_text, unreadable)


_NPM_SECTIONS = (("dependencies", "runtime"), ("peerDependencies", "runtime"),
                 ("optionalDependencies", "runtime"), ("devDependencies", "dev"))


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


#: Directories a workspace glob never matches in (npm and pnpm ignore them): what is
#: installed there is other people's packages, not the repo's.
_INSTALLED = frozenset({"node_modules", "bower_components"})


def members(out: Manifests, root: Path, rel: str, lines: Lines, patterns: list[str]) -> None:
    """The packages of a workspace's member directories (globs; ``!glob`` excludes):
    provided when inside the checkout, a dependency by path when outside it."""
    base = str(root)
    excluded: set[str] = set()
    for pattern in patterns:
        if pattern.startswith("!"):
            excluded.update(os.path.normpath(m) for m in glob.glob(
                os.path.join(glob.escape(base), pattern[1:].strip()), recursive=True))
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        found = sorted(glob.glob(os.path.join(glob.escape(base), pattern.strip()),
                                 recursive=True))
        for member in (os.path.normpath(m) for m in found):
            if (member in excluded or not os.path.isdir(member)
                    or _INSTALLED.intersection(Path(os.path.relpath(member, base)).parts)):
                continue
            if os.path.commonpath([member, base]) != base:
                out.requires.append(Requirement(
                    (PATH_ECOSYSTEM, member), "build", rel,
                    lines.find([f'"{pattern}"', f"'{pattern}'", pattern]), None, member))
                continue
            manifest = Path(member) / "package.json"
            member_rel = os.path.relpath(manifest, root)
            member_text: str | None = None
            try:
                member_text = read_text(manifest)
                if member_text is None:
                    continue
                member_data = json.loads(member_text)
                if isinstance(member_data, dict):
                    _npm_package(out, root, member_rel, member_text, member_data)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.problems.append(unreadable(member_rel, exc, member_text))


def _npm_package(out: Manifests, root: Path, rel: str, text: str,
                 data: Mapping[str, object]) -> None:
    lines = Lines(text)
    here = (root / rel).parent
    name = data.get("name")
    if isinstance(name, str) and name:
        out.provides.add(("npm", name.lower()))
    for section, type_ in _NPM_SECTIONS:
        deps = data.get(section)
        if not isinstance(deps, dict):
            continue
        for dep, spec in deps.items():
            path = None
            package, constraint = dep, spec if isinstance(spec, str) else None
            if isinstance(spec, str) and spec.startswith(("file:", "link:", "portal:")):
                path = local_path(here, "file:" + spec.split(":", 1)[1])
            elif isinstance(spec, str) and spec.startswith("npm:"):
                package, constraint = npm_alias(spec)
            out.requires.append(Requirement(
                ("npm", package.lower()), type_, rel,
                lines.find([json_key(dep)], [json_key(section)]), constraint, path))


def npm_alias(spec: str) -> tuple[str, str | None]:
    """The package and range an npm alias names: ``npm:@acme/button@^1`` ->
    ``("@acme/button", "^1")``; ``npm:lodash`` -> ``("lodash", None)``. The key it is
    written under (``"button"``) is only the name it is installed as."""
    rest = spec[len("npm:"):].strip()
    at = rest.find("@", 1)  # past a scope's leading "@"
    if at < 0:
        return rest, None
    return rest[:at], rest[at + 1:] or None
