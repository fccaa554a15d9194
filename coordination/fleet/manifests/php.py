"""composer.json with ``json``: the package ``name`` (and what it ``replace``s) provided,
``require`` runtime, ``require-dev`` dev. Platform packages are no package of anyone's
(``php``, ``hhvm``, ``ext-json``, ``lib-curl``, ``composer-plugin-api``...) and are
skipped. Names compare lower-cased, as Composer compares them."""

from __future__ import annotations

import json
from pathlib import Path

from coordination.fleet.manifests.base import Lines, Manifests, Requirement, Unreadable, json_key

_SECTIONS = (("require", "runtime"), ("require-dev", "dev"))
_PLATFORM = frozenset({"php", "php-64bit", "php-ipv6", "php-zts", "php-debug", "hhvm",
                       "composer", "composer-plugin-api", "composer-runtime-api"})


def platform(name: str) -> bool:
    """A platform package (the PHP runtime, an extension, a system library)."""
    n = name.lower()
    return n in _PLATFORM or n.startswith(("ext-", "lib-")) or "/" not in n


def composer_json(out: Manifests, root: Path, rel: str, text: str) -> None:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    name = data.get("name")
    if isinstance(name, str) and name:
        out.provides.add(("composer", name.lower()))
    replaced = data.get("replace")
    if isinstance(replaced, dict):  # a monorepo's package standing for its parts
        out.provides.update(("composer", n.lower()) for n in replaced if "/" in n)
    lines = Lines(text)
    for section, type_ in _SECTIONS:
        deps = data.get(section)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise Unreadable(f"{section}: an object of package names expected, not "
                             f"{type(deps).__name__}", lines.find((json_key(section),)))
        for dep, constraint in deps.items():
            if platform(dep):
                continue
            out.requires.append(Requirement(
                ("composer", dep.lower()), type_, rel,
                lines.find((json_key(dep),), (json_key(section),)),
                constraint if isinstance(constraint, str) else None))
