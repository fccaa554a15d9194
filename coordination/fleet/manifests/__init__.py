"""What a checkout's manifests say it provides and requires (``coord init``).

Each ecosystem is read with its own parser, one module each: ``python`` (``tomllib``,
``configparser``, ``packaging``), ``node`` (``json``), ``go`` (go.mod's line grammar),
``rust`` (``tomllib``), ``java`` (``xml.etree``). A package is named per ecosystem,
normalised as that ecosystem compares names: ``("python", canonicalize_name(n))``,
``("npm", n)``, ``("go", module path)``, ``("cargo", n with '_' as '-')``,
``("maven", "group:artifact")``; a requirement known by its local path only
(``-e ../core``) is ``("path", absolute path)``, matched to the checkout that path is
in. A manifest that cannot be read is a problem reported with the checkout, never a
failure of the whole run: a :class:`ManifestProblem` naming the file, the line the
parser gave and its message (``whole``: nothing of the file was read, so what it
provides and requires is unknown, which `coord init --check` never takes for "gone").
"""

from __future__ import annotations

import configparser
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from coordination.fleet.manifests import go, java, node, python, rust
from coordination.fleet.manifests.base import (
    MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES,
    ManifestProblem as ManifestProblem,
    Manifests as Manifests,
    Package as Package,
    Requirement as Requirement,
    read_text,
    unreadable,
)
from coordination.fleet.manifests.python import group_type as group_type

#: What a repo is, from the names at its top level: tag -> file names (or suffixes).
TAG_FILES: dict[str, tuple[str, ...]] = {
    "python": ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "requirements.txt"),
    "node": ("package.json", "pnpm-workspace.yaml"),
    "typescript": ("tsconfig.json",),
    "go": ("go.mod", "go.work"),
    "rust": ("Cargo.toml",),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts"),
    "docker": ("Dockerfile", "Containerfile", "docker-compose.yml", "docker-compose.yaml",
               "compose.yml", "compose.yaml"),
    "helm": ("Chart.yaml",),
    "ruby": ("Gemfile",),
}
TAG_SUFFIXES: dict[str, tuple[str, ...]] = {"terraform": (".tf",), "docker": (".dockerfile",)}

#: A manifest reader: (what it adds to, the checkout, the manifest's path in it, its text).
_Reader = Callable[[Manifests, Path, str, str], None]
READERS: tuple[tuple[str, _Reader], ...] = (
    ("pyproject.toml", python.pyproject), ("setup.cfg", python.setup_cfg),
    ("package.json", node.package_json), ("pnpm-workspace.yaml", node.pnpm_workspace),
    ("go.mod", go.go_mod), ("go.work", go.go_work), ("Cargo.toml", rust.cargo),
    ("pom.xml", java.pom),
)


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
    for name, reader in READERS:
        if name in names:
            _guarded(out, root, name, reader)
    for name in sorted(names):
        if name.startswith("requirements") and name.endswith(".txt"):
            _guarded(out, root, name, python.requirements_txt)
    if "requirements" in names and (root / "requirements").is_dir():
        for p in sorted((root / "requirements").glob("*.txt")):
            _guarded(out, root, f"requirements/{p.name}", python.requirements_txt)
    if "go" in out.tags:  # a Go repo's modules below its top (common/assets/go.mod)
        go.nested(out, root)
    return out


def _guarded(out: Manifests, root: Path, rel: str, reader: _Reader) -> None:
    text: str | None = None
    try:
        text = read_text(root / rel, root)
        if text is not None:
            out.files.add(rel)
            reader(out, root, rel, text)
    except (OSError, UnicodeDecodeError, ValueError, ET.ParseError, configparser.Error,
            TypeError, AttributeError, yaml.YAMLError, RecursionError) as exc:
        # ValueError covers tomllib.TOMLDecodeError, json.JSONDecodeError and
        # base.Unreadable (a symlink out, a FIFO, too large, a bad go.mod directive);
        # RecursionError a file nested too deep for its parser.
        out.problems.append(unreadable(rel, exc, text))
