"""What an audited edit changed: :func:`diff` of two catalogs, item by item and field by
field (values shortened by :func:`short`), every part of the catalog covered: repos,
issues, plans, todos, dependencies, webhooks, approvers, ``resources:``, ``order:``, and
any other top-level field (named by itself), so no edit, through coord or by hand,
passes unrecorded."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from pydantic import BaseModel

    from coordination.catalog.models import Catalog
    from coordination.jsonable import JSONObject, JSONValue

MAX_VALUE = 200  # characters of JSON kept of a field's value; longer ones are shortened


class Change(TypedDict):
    """One thing an edit created, deleted or updated (see :func:`diff`)."""

    id: str
    kind: str
    action: str  # "created", "deleted" or "updated"
    fields: dict[str, list[JSONValue]]  # name -> [before, after]


_SHORT_INT = 10**100  # an int within it writes at most 101 characters of JSON


def short(value: JSONValue) -> JSONValue:
    """``value`` as is when its JSON is short, else its JSON text cut to MAX_VALUE."""
    if value is None or isinstance(value, float) or (
            isinstance(value, int) and -_SHORT_INT < value < _SHORT_INT):
        return value  # its JSON is short without writing it (floats are finite here)
    if isinstance(value, str) and 6 * len(value) + 2 <= MAX_VALUE:
        return value  # even escaped (\u00XX), its JSON is short
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) <= MAX_VALUE:
        return value
    return f"{text[:MAX_VALUE]}… ({len(text)} chars)"


def _items(cat: Catalog) -> dict[str, tuple[str, BaseModel]]:
    """Every addressable thing in a catalog: id (or repo name) -> (kind, model)."""
    out: dict[str, tuple[str, BaseModel]] = {r.name: ("repo", r) for r in cat.repos}
    c = cat.coordination
    for kind, items in (("issue", c.issues), ("plan", c.plans), ("todo", c.todos),
                        ("dependency", c.dependencies)):
        out.update((x.id, (kind, x)) for x in items)
    return out


def _fields(model: BaseModel) -> JSONObject:
    return model.model_dump(mode="json")


def _changed_fields(a: BaseModel, b: BaseModel) -> tuple[JSONObject, JSONObject] | None:
    """The fields of ``a`` and ``b`` (as JSON) that may differ, None when ``a == b``:
    of one class, those whose values differ (an item's fields are written each on its
    own, so equal values write equally); a sync changes two fields of a todo's twenty."""
    if type(a) is not type(b):
        return None if a == b else (_fields(a), _fields(b))
    da, db = a.__dict__, b.__dict__
    changed = set() if da == db else {k for k, v in da.items() if k not in db or db[k] != v}
    changed.update(k for k in db if k not in da)
    # Fields that differ make two models of one class unequal; else their == decides.
    if (not changed or not changed <= type(a).model_fields.keys()) and a == b:
        return None
    return (a.model_dump(mode="json", include=changed),
            b.model_dump(mode="json", include=changed))


def diff(before: Catalog, after: Catalog) -> list[Change]:
    """One record per thing created, deleted or changed: ``{"id", "kind", "action",
    "fields": {name: [before, after]}}``, only the fields that differ (a new or
    deleted thing: its non-empty fields), values shortened by :func:`short`."""
    old, new = _items(before), _items(after)
    out: list[Change] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        pairs: dict[str, list[JSONValue]]
        if a is not None and b is not None:
            fields = _changed_fields(a[1], b[1])
            if fields is None:
                continue
            kind, action = b[0], "updated"
            fa, fb = fields
            pairs = {k: [short(fa.get(k)), short(fb.get(k))]
                     for k in [*fa, *(k for k in fb if k not in fa)] if fa.get(k) != fb.get(k)}
        else:
            either = b if b is not None else a
            assert either is not None  # the key comes from old or new
            kind, model = either
            action = "created" if a is None else "deleted"
            values = {k: v for k, v in _fields(model).items() if v not in (None, "", [], {})}
            pairs = {k: [None, short(v)] if a is None else [short(v), None]
                     for k, v in values.items()}
        out.append({"id": key, "kind": kind, "action": action, "fields": pairs})
    out.extend(_named_changes("resource", {r.name: r for r in before.resources},
                              {r.name: r for r in after.resources}))
    out.extend(_notify_changes(before, after))
    out.extend(_other_changes(before, after))
    if before.approvers != after.approvers:  # who may approve gates (approvers set)
        out.append({"id": "approvers", "kind": "catalog", "action": "updated", "fields": {
            "allowed_signers": [short(a.allowed_signers if a else None)
                                for a in (before.approvers, after.approvers)]}})
    if before.version != after.version:
        out.append({"id": "catalog", "kind": "catalog", "action": "updated",
                    "fields": {"version": [before.version, after.version]}})
    return out


def _notify_changes(before: Catalog, after: Catalog) -> list[Change]:
    """The webhooks (``notify:``) added, removed or changed, each named by its url with
    any password masked (the log outlives the url's removal from the catalog)."""
    if before.notify == after.notify:
        return []
    from coordination.redis_url import redact_url  # lazy: an edit of notify: only

    def by_url(cat: Catalog) -> dict[str, JSONObject]:
        return {redact_url(t.url): {**t.model_dump(mode="json"), "url": redact_url(t.url)}
                for t in cat.notify}

    old, new = by_url(before), by_url(after)
    out: list[Change] = []
    for url in [*old, *(u for u in new if u not in old)]:
        a, b = old.get(url), new.get(url)
        if a == b:
            continue
        action = "created" if a is None else "deleted" if b is None else "updated"
        keys = [*(a or {}), *(k for k in b or {} if k not in (a or {}))]
        out.append({"id": url, "kind": "notify", "action": action, "fields": {
            k: [short((a or {}).get(k)), short((b or {}).get(k))]
            for k in keys if (a or {}).get(k) != (b or {}).get(k)}})
    return out


#: The parts of a catalog :func:`diff` names item by item; every other field of the
#: catalog (``order:``, and any added later) and of ``coordination:`` is compared whole.
_ITEMIZED = frozenset({"version", "repos", "resources", "coordination", "notify", "approvers",
                       "issues", "plans", "todos", "dependencies"})


def _named_changes(kind: str, old: dict[str, BaseModel], new: dict[str, BaseModel]
                   ) -> list[Change]:
    """The things of one ``kind`` (by name) created, deleted or changed."""
    out: list[Change] = []
    for name in [*old, *(n for n in new if n not in old)]:
        a, b = old.get(name), new.get(name)
        fa = _fields(a) if a is not None else {}
        fb = _fields(b) if b is not None else {}
        if fa == fb:
            continue
        action = "created" if a is None else "deleted" if b is None else "updated"
        out.append({"id": name, "kind": kind, "action": action, "fields": {
            k: [short(fa.get(k)), short(fb.get(k))]
            for k in [*fa, *(k for k in fb if k not in fa)] if fa.get(k) != fb.get(k)}})
    return out


def _other_changes(before: Catalog, after: Catalog) -> list[Change]:
    """Every other field of the catalog and of its ``coordination:`` that changed (as
    ``{"id": field, "kind": "catalog"}``, its keys' values before and after)."""
    out: list[Change] = []
    for owner_a, owner_b in ((before, after), (before.coordination, after.coordination)):
        for name in type(owner_a).model_fields:
            if name in _ITEMIZED:
                continue
            a, b = getattr(owner_a, name), getattr(owner_b, name)
            if a == b:
                continue
            da = owner_a.model_dump(mode="json", include={name}).get(name)
            db = owner_b.model_dump(mode="json", include={name}).get(name)
            if isinstance(da, dict) and isinstance(db, dict):
                fields = {k: [short(da.get(k)), short(db.get(k))]
                          for k in [*da, *(k for k in db if k not in da)]
                          if da.get(k) != db.get(k)}
            else:
                fields = {name: [short(da), short(db)]}
            out.append({"id": name, "kind": "catalog", "action": "updated", "fields": fields})
    return out
