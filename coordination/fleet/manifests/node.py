"""Node manifests: package.json with ``json``, and the package.json of each of its
``workspaces`` (every member is a package the repo provides)."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from pathlib import Path

from coordination.fleet.manifests.base import Lines, Manifests, Requirement, read_text


_NPM_SECTIONS = (("dependencies", "runtime"), ("peerDependencies", "runtime"),
                 ("optionalDependencies", "runtime"), ("devDependencies", "dev"))


def package_json(out: Manifests, root: Path, rel: str, text: str) -> None:
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
                member_text = read_text(manifest)
                if member_text is None:
                    continue
                member_data = json.loads(member_text)
                if isinstance(member_data, dict):
                    _npm_package(out, member_rel, member_text, member_data)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.problems.append(f"{member_rel}: {exc}")


def _npm_package(out: Manifests, rel: str, text: str, data: Mapping[str, object]) -> None:
    lines = Lines(text)
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
