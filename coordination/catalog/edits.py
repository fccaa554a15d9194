"""Edits of the round-trip catalog document (ruamel CommentedMap/CommentedSeq).

New items get their keys in the order of DESIGN.md and leave out empty
values, like a hand-written entry; existing items keep their layout. Used by
the manager and by sweep sync, inside ``CatalogStore.update``.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any

from coordination.errors import NotFoundError


ISSUE_KEYS = (
    "id", "title", "description", "status", "priority", "severity", "repos", "created",
    "updated", "target", "dependencies", "blocking", "assignee", "labels", "metadata",
)
TODO_KEYS = (
    "id", "task", "description", "repo", "plan", "run", "undo", "timeout", "retries", "env",
    "status", "priority", "estimated_hours", "actual_hours", "blocked_by", "blocking",
    "assignee", "labels", "acceptance_criteria",
)
DEP_KEYS = (
    "id", "consumer", "provider", "type", "version_constraint", "status", "notes", "validation",
)


def unknown(name: str, known: Iterable[str], what: str) -> NotFoundError:
    """A NotFoundError whose hint names the closest match, or where to look."""
    known = sorted(known)
    close = get_close_matches(name.upper() if what != "repo" else name, known, n=3)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        noun = {"dependency": "dep"}.get(what, what)
        listing = f"coord {noun} list"
        hint = f"`{listing}` shows what exists" if known else f"the catalog has no {what}s yet"
    return NotFoundError(f"unknown {what} {name!r}", hint=hint)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def _yaml_value(value: Any) -> Any:
    """Lists as flow sequences (``[a, b]``), as the example writes them."""
    if isinstance(value, (list, tuple)):
        from ruamel.yaml.comments import CommentedSeq

        seq = CommentedSeq(value)
        if all(isinstance(v, str) and len(v) < 40 for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def section(doc: Any, name: str, *, create: bool = False) -> Any:
    """``coordination.<name>`` of the document; created when missing and ``create``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    coord = doc.get("coordination")
    if not isinstance(coord, dict):
        if not create:
            return []
        coord = doc["coordination"] = CommentedMap()
    items = coord.get(name)
    flow = getattr(getattr(items, "fa", None), "flow_style", lambda: False)()
    if not isinstance(items, list) or (create and not items and flow):
        if not create:
            return []
        # An empty `todos: []` would keep flow style and put whole todos on one line.
        items = coord[name] = CommentedSeq()
    return items


def ids_in(doc: Any, name: str) -> list[str]:
    return [str(x.get("id")) for x in section(doc, name) if isinstance(x, dict)]


def repo_names(doc: Any) -> list[str]:
    repos = doc.get("repos") or []
    return [str(r.get("name")) for r in repos if isinstance(r, dict)]


def find_item(doc: Any, name: str, id_: str, kind: str) -> Any:
    for item in section(doc, name):
        if isinstance(item, dict) and item.get("id") == id_:
            return item
    raise unknown(id_, ids_in(doc, name), kind)


def new_item(order: tuple[str, ...], **values: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap

    item = CommentedMap()
    for key in order:
        if key in values and not _is_empty(values[key]):
            item[key] = _yaml_value(values[key])
    return item


def put(item: Any, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set ``key`` (at its canonical position when new); an empty value removes it."""
    if _is_empty(value):
        item.pop(key, None)
        return
    value = _yaml_value(value)
    if key in item:
        item[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    pos = len(item)
    for i, existing in enumerate(item):
        if existing in order and order.index(existing) > rank:
            pos = i
            break
    item.insert(pos, key, value)


def append_unique(item: Any, key: str, value: str, order: tuple[str, ...]) -> None:
    current = item.get(key)
    if isinstance(current, list):
        if value not in current:
            current.append(value)
    else:
        put(item, key, [value], order)
