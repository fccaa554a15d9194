"""Ids never reused: the highest id of each kind a catalog has held at an audited edit,
kept in every entry's ``highest`` (:func:`coordination.catalog.audit.log.highest`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

#: The id series of a catalog (models.ID_PREFIX's kinds), each kept in ``highest``.
_SERIES = re.compile(r"(ISSUE|PLAN|TODO|DEP|MS)-(\d+)")
_KIND = {"ISSUE": "issue", "PLAN": "plan", "TODO": "todo", "DEP": "dependency", "MS": "milestone"}


def catalog_ids(cat: Catalog) -> list[str]:
    """Every id of a catalog: issues, plans, their milestones, todos, dependencies."""
    c = cat.coordination
    out = [x.id for x in c.issues] + [x.id for x in c.plans] + [x.id for x in c.todos]
    out += [x.id for x in c.dependencies]
    out += [m.id for p in c.plans for m in p.milestones]
    return out


def _number(id_: str) -> tuple[str, int] | None:
    m = _SERIES.fullmatch(id_)
    return None if m is None else (_KIND[m.group(1)], int(m.group(2)))


def _top(*groups: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """The id with the highest number of each kind among ``groups`` (mappings of kind ->
    id, or lists of ids); of two with the same number, the wider (``TODO-0010``)."""
    best: dict[str, tuple[int, int, str]] = {}
    for group in groups:
        for id_ in (group.values() if isinstance(group, Mapping) else group):
            found = _number(id_)
            if found is None:
                continue
            kind, n = found
            rank = (n, len(id_), id_)
            if kind not in best or rank > best[kind]:
                best[kind] = rank
    return {kind: best[kind][2] for kind in sorted(best)}


def _highest_field(value: object) -> dict[str, str] | None:
    """An entry's ``highest`` when it is one (kind -> id of that kind), else None."""
    if not isinstance(value, dict):
        return None
    out = {k: v for k, v in value.items() if isinstance(v, str)
           and (found := _number(v)) is not None and found[0] == k}
    return out if len(out) == len(value) else None
