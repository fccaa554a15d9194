"""Edits of the round-trip catalog document (ruamel CommentedMap/CommentedSeq).

New items get their keys in the order of DESIGN.md and leave out empty
values, like a hand-written entry; existing items keep their layout. Used by
the manager and by sweep sync, inside ``CatalogStore.update``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NotRequired, TypeAlias, TypedDict

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from coordination.catalog.audit import log as audit
# unknown is re-exported: edits that look an id up import it from here.
from coordination.catalog.rules.checks import loc_to_field, unknown as unknown
from coordination.catalog.models import next_id
from coordination.catalog.selection.templates import template_outcome
from coordination.errors import Problem, UsageError

#: A block or flow collection of the document, and a key or index into one.
Node: TypeAlias = CommentedMap | CommentedSeq
Key: TypeAlias = str | int
#: What ruamel keeps per key or index (``node.ca.items``): comment tokens, and lists
#: of them, at fixed positions.
_Slot: TypeAlias = list[CommentToken | list[CommentToken] | None]


ISSUE_KEYS = (
    "id", "title", "description", "status", "priority", "severity", "repos", "created",
    "updated", "target", "dependencies", "blocking", "assignee", "labels", "forge_issue",
    "metadata",
)
TODO_KEYS = (
    "id", "task", "description", "repo", "for_each", "deps", "instances", "plan", "run", "undo", "timeout", "retries", "env",
    "mask_env", "outputs", "resources", "cache", "status", "priority", "estimated_hours", "actual_hours",
    "blocked_by", "blocking", "assignee", "labels", "acceptance_criteria", "gate", "commit",
    "verify", "due",
)
DEP_KEYS = (
    "id", "consumer", "provider", "type", "indirect", "version_constraint", "status", "notes",
    "validation", "source",
)
PLAN_KEYS = (
    "id", "title", "description", "status", "repos", "milestones", "completion_criteria", "change",
    "waves", "pace", "schedule", "on", "due",
)
NOTIFY_KEYS = ("url", "events", "secret_env", "format")


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def _yaml_value(value: object) -> object:
    """Lists as flow sequences (``[a, b]``) and small text mappings as flow mappings
    (``{PYTHON: "3.13"}``), as the example writes them."""
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(value)
        if all(isinstance(v, str) and len(v) < 40 for v in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        entries = CommentedMap(value)
        if all(isinstance(v, str) for v in value.values()) and sum(
                len(str(k)) + len(v) + 4 for k, v in value.items()) < 60:
            entries.fa.set_flow_style()
        return entries
    return value


def flow(value: object) -> object:
    """``value`` (mappings, lists, scalars) as YAML flow collections all the way down:
    ``gate: {approvals: 2, from: [ana, bo]}``, as DESIGN.md writes these fields."""
    if isinstance(value, Mapping):
        out = CommentedMap((k, flow(v)) for k, v in value.items())
        out.fa.set_flow_style()
        return out
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(flow(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    return value


def flow_items(values: Iterable[Mapping[str, object]]) -> CommentedSeq:
    """A block list of flow mappings, one per line (a plan's ``waves:``)."""
    return CommentedSeq(flow(v) for v in values)


def section(doc: CommentedMap, name: str, *, create: bool = False) -> CommentedSeq:
    """``coordination.<name>`` of the document; created when missing and ``create``
    (else an empty sequence that is not part of the document)."""
    coord = doc.get("coordination")
    if not isinstance(coord, dict):
        if not create:
            return CommentedSeq()
        coord = doc["coordination"] = CommentedMap()
    items = coord.get(name)
    flow = getattr(getattr(items, "fa", None), "flow_style", lambda: False)()
    if not isinstance(items, CommentedSeq) or (create and not items and flow):
        if not create:
            return CommentedSeq()
        # An empty `todos: []` would keep flow style and put whole todos on one line.
        items = coord[name] = CommentedSeq()
    return items


def ids_in(doc: CommentedMap, name: str) -> list[str]:
    return [str(x.get("id")) for x in section(doc, name) if isinstance(x, dict)]


SECTIONS = {"issue": "issues", "plan": "plans", "todo": "todos", "dependency": "dependencies"}


def milestone_ids(doc: CommentedMap) -> list[str]:
    """Every milestone id of every plan (they are unique across the catalog)."""
    return [str(ms.get("id")) for plan in section(doc, "plans") if isinstance(plan, dict)
            for ms in plan.get("milestones") or () if isinstance(ms, dict)]


def new_id_in(doc: CommentedMap, kind: str, catalog: str | os.PathLike[str]) -> str:
    """A new id of ``kind`` for the document of ``catalog``: one above every id of that
    kind in the document (hand-added ones too) and above the highest the audit log
    has recorded (:func:`audit.highest`), so a deleted id is never handed out again."""
    existing = milestone_ids(doc) if kind == "milestone" else ids_in(doc, SECTIONS[kind])
    seen = audit.highest(catalog).get(kind)
    return next_id(kind, [*existing, seen] if seen else existing)


def repo_names(doc: CommentedMap) -> list[str]:
    repos = doc.get("repos") or []
    return [str(r.get("name")) for r in repos if isinstance(r, dict)]


def find_repo(doc: CommentedMap, name: str) -> tuple[int, CommentedMap]:
    """The index and item of the repo ``name`` in the top-level ``repos``."""
    for i, item in enumerate(doc.get("repos") or ()):
        if isinstance(item, CommentedMap) and item.get("name") == name:
            return i, item
    raise unknown(name, repo_names(doc), "repo")


def repos_section(doc: CommentedMap) -> CommentedSeq:
    """The top-level ``repos`` to append to: a block sequence, which replaces a missing
    or empty flow one (``repos: []``), new after ``version`` (or first)."""
    repos = doc.get("repos")
    if not isinstance(repos, CommentedSeq) or (not repos and repos.fa.flow_style()):
        repos = CommentedSeq()
        if "repos" in doc:
            doc["repos"] = repos
        else:
            doc.insert(list(doc).index("version") + 1 if "version" in doc else 0,
                       "repos", repos)
    return repos


def find_item(doc: CommentedMap, name: str, id_: str, kind: str) -> CommentedMap:
    for item in section(doc, name):
        if isinstance(item, CommentedMap) and item.get("id") == id_:
            return item
    raise unknown(id_, ids_in(doc, name), kind)


def plan_todo_items(doc: CommentedMap, plan_id: str) -> list[CommentedMap]:
    """The plan's todo items in the document: those naming it in ``plan`` or listed
    in its milestones, in file order, each once. The same rule as
    :meth:`Catalog.plan_todos`, for edits that must decide on the document they
    change (``sweep sync`` completing a plan) rather than on an earlier load."""
    listed: set[str] = set()
    for plan in section(doc, "plans"):
        if isinstance(plan, dict) and plan.get("id") == plan_id:
            for ms in plan.get("milestones") or ():
                if isinstance(ms, dict):
                    listed.update(str(t) for t in ms.get("todos") or ())
    return [t for t in section(doc, "todos") if isinstance(t, CommentedMap)
            and (t.get("plan") == plan_id or t.get("id") in listed)]


def new_item(order: tuple[str, ...], **values: object) -> CommentedMap:
    item = CommentedMap()
    for key in order:
        if key in values and not _is_empty(values[key]):
            item[key] = _yaml_value(values[key])
    return item


def append_item(items: CommentedSeq, item: CommentedMap) -> None:
    """``items.append(item)``, the lines after the old last item kept at the end."""
    items.append(item)
    _ends_after(items, len(items) - 2, len(items) - 1)


def _ends_after(container: object, old: Key, new: Key) -> None:
    """``new`` was just added after ``old``, the last entry of the block ``container``:
    the comment and blank lines after ``old`` (ruamel keeps them on its last value) go
    after ``new``. They separate the collection from what follows it (``todos:`` from
    ``dependencies:``), not its entries. A placeholder of the splice path (not yet a
    real ruamel node) has edited its own text, where they stay at the end already."""
    if (not isinstance(container, (CommentedMap, CommentedSeq))
            or type(container) not in (CommentedMap, CommentedSeq) or not _is_block(container)):
        return
    if isinstance(old, int) and old < 0:
        return
    lines = _after_lines(container, old)
    if lines:
        _take_after_lines(container, old)
        _set_after_lines(container, new, lines)


def put(item: CommentedMap, key: str, value: object, order: tuple[str, ...]) -> None:
    """Set ``key`` (at its canonical position when new); an empty value removes it."""
    if _is_empty(value):
        if key in item:
            remove_key(item, key)
        return
    value = _yaml_value(value)
    if key in item:
        item[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    pos = len(item)
    keys = list(item)
    for i, existing in enumerate(keys):
        if existing in order and order.index(existing) > rank:
            pos = i
            break
    # The comment lines between the key before and the one after introduce the one
    # after: they stay right above it, under the new key (and go back when it goes).
    # (A placeholder of the splice path still unparsed after ``list(item)`` has no
    # comment line inside: its own text says so, and looking would parse it.)
    real = type(item) is CommentedMap
    above = _after_lines(item, keys[pos - 1]) if real and 0 < pos < len(keys) else ""
    if above:
        _take_after_lines(item, keys[pos - 1])
    item.insert(pos, key, value)
    if above:
        _set_after_lines(item, key, above)
    if pos == len(keys) and keys:
        _ends_after(item, keys[-1], key)


def put_field(item: CommentedMap, key: str, value: object, order: tuple[str, ...]) -> None:
    """Set a structured field as DESIGN.md writes it: a mapping as a flow mapping
    (``pace: {key: repo, rate: 10/hour}``), a list of mappings as a block list of flow
    mappings (``waves:``), anything else as :func:`put` does; None or an empty value
    removes the key. The loader decides whether the value is valid (the store
    validates the edited catalog before writing anything)."""
    if isinstance(value, Mapping):
        value = flow(value) if value else None
    elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, Mapping) for v in value):
        value = flow_items(value)
    put(item, key, value, order)


def put_mapping_entries(item: CommentedMap, key: str, changes: Mapping[str, object | None],
                        order: tuple[str, ...]) -> None:
    """:func:`put_entries` for a structured field: a new mapping is written as a flow
    mapping (``change: {branch: x, land: command}``), an existing one edited in place."""
    if isinstance(item.get(key), CommentedMap):
        put_entries(item, key, changes, order)
    else:
        put_field(item, key, {k: v for k, v in changes.items() if v is not None}, order)


def put_changes(item: CommentedMap, order: tuple[str, ...], plain: Mapping[str, object],
                fields: Mapping[str, object], lists: Mapping[str, list[str]],
                entries: Iterable[str] = ()) -> None:
    """An update's values written on its item: ``plain`` ones with :func:`put`,
    structured ``fields`` with :func:`put_field` (those named in ``entries`` that are
    not None entry by entry, :func:`put_mapping_entries`: the entries not named are
    kept), then ``lists`` with :func:`put_list`."""
    by_entry = frozenset(entries)
    for key, value in plain.items():
        put(item, key, value, order)
    for key, value in fields.items():
        if key in by_entry and value is not None:
            put_mapping_entries(item, key, value, order)  # type: ignore[arg-type]
        else:
            put_field(item, key, value, order)
    for key, values in lists.items():
        put_list(item, key, values, order)


def put_list(item: CommentedMap, key: str, values: list[str], order: tuple[str, ...]) -> None:
    """Replace the list ``item[key]`` with ``values``, editing it in place when it is
    one: kept elements keep their lines and comments, and a block list stays a block
    list. An empty ``values`` removes the key."""
    current = item.get(key)
    if not values or not isinstance(current, CommentedSeq):
        put(item, key, values, order)
        return
    if list(current) == list(values):
        return
    # The lines after the list stay after it (a placeholder turns real here).
    tail = _after_lines(current, len(current) - 1) if _is_block(current) else ""
    if tail:
        _take_after_lines(current, len(current) - 1)
    for i in reversed(range(len(current))):
        if current[i] not in values:
            remove_index(current, i)
    kept = list(current)
    if kept == [v for v in values if v in kept]:
        # Same relative order: put the new ones where ``values`` has them.
        for pos, v in enumerate(values):
            if v not in kept:
                current.insert(pos, v)
    else:
        del current[:]
        current.extend(values)
    if tail:
        _set_after_lines(current, len(current) - 1, tail)


def put_entries(item: CommentedMap, key: str, changes: Mapping[str, object | None],
                order: tuple[str, ...]) -> None:
    """Set (or, for None, remove) entries of the mapping ``item[key]`` in place: the
    others keep their lines, and a flow mapping stays one; no entry left removes the key."""
    current = item.get(key)
    if not isinstance(current, CommentedMap):
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(changes)
        put(item, key, {k: v for k, v in merged.items() if v is not None}, order)
        return
    left = [k for k in current if k not in changes] + [
        k for k, v in changes.items() if v is not None]
    if not left:  # the whole key goes (with it, the lines after it are handed on)
        if key in item:
            remove_key(item, key)
        return
    for name, value in changes.items():
        if value is None:
            if name in current:
                remove_key(current, name)
        elif name in current:
            if current[name] != value:
                current[name] = value
        else:
            last = list(current)[-1] if current else None
            current[name] = value
            if last is not None:
                _ends_after(current, last, name)


def append_unique(item: CommentedMap, key: str, value: str, order: tuple[str, ...]) -> None:
    current = item.get(key)
    if isinstance(current, list):
        if value not in current:
            current.append(value)
            _ends_after(current, len(current) - 2, len(current) - 1)
    else:
        put(item, key, [value], order)


def remove_from(item: CommentedMap, key: str, value: str) -> bool:
    """Take ``value`` out of the list ``item[key]``; an emptied list loses its key."""
    current = item.get(key)
    if not isinstance(current, CommentedSeq) or value not in current:
        return False
    if all(v == value for v in current):
        remove_key(item, key)
        return True
    for i in reversed([i for i, v in enumerate(current) if v == value]):
        remove_index(current, i)
    return True


# -- references between items -----------------------------------------------------
# Where an id of each kind may be named: (section, field) of issues and todos, and
# ("milestones", "todos") for the milestones of every plan. A ``blocking`` entry that
# mirrors the item's own ``blocked_by``/``dependencies`` is part of the item's relation,
# not a reference to it (see ``Reference.mirror``).
MIRRORED = {"issue": "dependencies", "todo": "blocked_by"}
REFERENCE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "issue": (("issues", "dependencies"), ("issues", "blocking"), ("todos", "blocked_by")),
    "todo": (("todos", "blocked_by"), ("todos", "blocking"), ("milestones", "todos")),
}
_VERB = {
    "dependencies": "depends on", "blocking": "blocks", "blocked_by": "is blocked by",
    "todos": "lists",
}


class ReferenceDict(TypedDict):
    """:meth:`Reference.to_dict`: a list the id was taken out of (``delete --json``)."""

    id: str
    kind: str
    field: str
    plan: NotRequired[str]
    mirror: bool


@dataclass(frozen=True)
class Reference:
    """One place that names an id: ``referrer``'s list ``field`` holds it."""

    referrer: str  # the issue, todo or milestone whose list names the id
    kind: str  # "issue", "todo" or "milestone"
    field: str  # "dependencies", "blocking", "blocked_by" or "todos"
    target: str  # the id named
    loc: tuple[str | int, ...]  # path to the list element in the document
    plan: str | None = None  # the plan of a milestone
    # The other side of the target's own blocked_by/dependencies: removed with the
    # target, never a reason to refuse its deletion.
    mirror: bool = False
    # What to say instead of "<referrer> <verb> <target>" (a plan's todos, a repo's users).
    text: str | None = None

    def to_dict(self) -> ReferenceDict:
        if self.plan is not None:
            return {"id": self.referrer, "kind": self.kind, "field": self.field,
                    "plan": self.plan, "mirror": self.mirror}
        return {"id": self.referrer, "kind": self.kind, "field": self.field,
                "mirror": self.mirror}

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        who = f"milestone {self.referrer} of {self.plan}" if self.plan else self.referrer
        return f"{who} {_VERB.get(self.field, 'names')} {self.target}"


def references(doc: CommentedMap, id_: str, kind: str) -> list[Reference]:
    """Every list element of the document that names ``id_`` (an issue or todo id)."""
    out: list[Reference] = []
    fields = REFERENCE_FIELDS[kind]
    own = next((x for x in section(doc, kind + "s")
                if isinstance(x, CommentedMap) and x.get("id") == id_), CommentedMap())
    mine = own.get(MIRRORED[kind]) or ()

    def scan(item: CommentedMap, ref_kind: str, loc: tuple[str | int, ...], plan: str | None) -> None:
        for section_name, field in fields:
            if section_name != {"issue": "issues", "todo": "todos"}.get(ref_kind, "milestones"):
                continue
            values = item.get(field)
            if not isinstance(values, list) or item.get("id") == id_:
                continue
            for j, v in enumerate(values):
                if v == id_:
                    out.append(Reference(
                        str(item.get("id")), ref_kind, field, id_, (*loc, field, j), plan,
                        mirror=field == "blocking" and item.get("id") in mine,
                    ))

    for sec, ref_kind in (("issues", "issue"), ("todos", "todo")):
        for i, item in enumerate(section(doc, sec)):
            if isinstance(item, CommentedMap):
                scan(item, ref_kind, ("coordination", sec, i), None)
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, dict) or not isinstance(plan.get("milestones"), list):
            continue
        for j, ms in enumerate(plan["milestones"]):
            if isinstance(ms, CommentedMap):
                scan(ms, "milestone", ("coordination", "plans", i, "milestones", j),
                     str(plan.get("id")))
    return out


def drop_references(doc: CommentedMap, refs: Iterable[Reference]) -> None:
    """Remove each reference's element (the id from the referrer's list)."""
    for ref in refs:
        parent: CommentedMap = doc
        for part in ref.loc[:-2]:
            parent = parent[part]
        remove_from(parent, ref.field, ref.target)


class StillReferenced(UsageError):
    """A delete refused because other items name the id; ``referrers`` says which.

    ``problems`` locate each one (``loc``; file and line once the caller fills them in).
    """

    def __init__(self, id_: str, refs: list[Reference], problems: list[Problem] | None = None,
                 *, reason: str | None = None, hint: str | None = None) -> None:
        self.id = id_
        self.referrers = refs
        self.reason, self.force_hint = reason, hint
        self.problems = problems if problems is not None else [
            Problem(str(r), field=loc_to_field(r.loc[:-1] if isinstance(r.loc[-1], int)
                                              else r.loc), loc=r.loc) for r in refs
        ]
        n = len(refs)
        lines = "\n".join(f"  {p}" for p in self.problems)
        why = reason or f"{n} reference{'s' if n != 1 else ''} to it would dangle"
        super().__init__(
            f"cannot delete {id_}: {why}\n{lines}",
            hint=hint or f"remove {'them' if n != 1 else 'it'} first, or pass --force to delete "
            f"{id_} and drop {'them' if n != 1 else 'it'} in the same edit",
        )

    def located(self, problems: list[Problem]) -> StillReferenced:
        """The same refusal with ``problems`` (file and line filled in)."""
        return StillReferenced(self.id, self.referrers, problems, reason=self.reason,
                               hint=self.force_hint)


def remove_item(doc: CommentedMap, name: str, id_: str, kind: str) -> CommentedMap:
    """Take the item with ``id_`` out of ``coordination.<name>``; returns it."""
    items = section(doc, name)
    for i, item in enumerate(items):
        if isinstance(item, CommentedMap) and item.get("id") == id_:
            _remove_entry(doc["coordination"], name, i)
            return item
    raise unknown(id_, ids_in(doc, name), kind)


def remove_repo_item(doc: CommentedMap, name: str) -> CommentedMap:
    """Take the repo ``name`` out of the top-level ``repos``; returns it."""
    for i, item in enumerate(doc.get("repos") or ()):
        if isinstance(item, CommentedMap) and item.get("name") == name:
            _remove_entry(doc, "repos", i)
            return item
    raise unknown(name, repo_names(doc), "repo")


def remove_at(doc: CommentedMap, name: str, i: int) -> None:
    """Take the ``i``-th item out of ``coordination.<name>`` (many at once: from the
    highest index down, each found once, not by a scan per id as :func:`remove_item`)."""
    _remove_entry(doc["coordination"], name, i)


def _remove_entry(parent: CommentedMap, name: str, i: int) -> None:
    items = parent[name]
    left = remove_index(items, i)
    if not items:  # the section is empty now: `name: []`, then the lines after
        items.fa.set_flow_style()
        _hoist_comments_above(parent, name)
        _set_after_lines(parent, name, left)


# -- removal that keeps the comments around what is removed --------------------------
def _is_block(node: object) -> bool:
    if not isinstance(node, (CommentedMap, CommentedSeq)) or not node:
        return False
    return not node.fa.flow_style()


def _last_leaf(container: Node, key: Key) -> tuple[Node, Key]:
    """The innermost last entry of ``container[key]`` (itself unless a block node)."""
    while _is_block(container[key]):
        container = container[key]
        key = list(container)[-1] if isinstance(container, CommentedMap) else len(container) - 1
    return container, key


def _slot(container: Node, key: Key, *, create: bool = False) -> tuple[_Slot, int] | None:
    """The comment slot after the line of ``container[key]``'s value."""
    pos = 0 if isinstance(container, list) else 2
    slot: _Slot | None = container.ca.items.get(key)
    if slot is None and create:
        slot = container.ca.items[key] = _empty_slot()
    if slot is None or len(slot) <= pos:
        return None
    return slot, pos


def _empty_slot() -> _Slot:
    return [None, None, None, None]


def _end_lines(node: Node) -> str:
    """Lines ruamel keeps at the end of a block node (``ca.end``)."""
    return "".join(str(t.value) for t in (getattr(node.ca, "end", None) or ()))


def _after_lines(container: Node, key: Key) -> str:
    """Comment and blank lines after the end-of-line comment of ``container[key]``."""
    rest = ""
    found = _slot(*_last_leaf(container, key))
    token = None if found is None else found[0][found[1]]
    if isinstance(token, CommentToken):
        _, nl, rest = str(token.value).partition("\n")
    ends, node = [], container[key]
    while _is_block(node):
        ends.append(_end_lines(node))
        node = node[list(node)[-1] if isinstance(node, dict) else len(node) - 1]
    return rest + "".join(reversed(ends))


def _take_after_lines(container: Node, key: Key) -> None:
    """Drop the lines :func:`_after_lines` returns (the end-of-line comment stays)."""
    _set_after_lines(container, key, "")
    node = container[key]
    while _is_block(node):
        node.ca.end = []
        node = node[list(node)[-1] if isinstance(node, dict) else len(node) - 1]


def _set_after_lines(container: Node, before: Key, lines: str) -> None:
    """Make ``lines`` the comment/blank lines after ``container[before]``, replacing
    those that introduced the node removed after it; its end-of-line comment stays."""
    found = _slot(*_last_leaf(container, before), create=bool(lines))
    if found is None:
        return
    slot, pos = found
    token = slot[pos]
    eol = str(token.value).partition("\n")[0] if isinstance(token, CommentToken) else ""
    if not eol and not lines:
        slot[pos] = None
    elif not isinstance(token, CommentToken):
        slot[pos] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        token.value = eol + "\n" + lines


def _set_before_first(seq: CommentedSeq, lines: str) -> None:
    """Put ``lines`` before the first item of ``seq``, ahead of its own comments."""
    while lines.startswith("\n"):  # no blank line right under the sequence's key
        lines = lines[1:]
    if not lines or not seq:
        return
    slot: _Slot = seq.ca.items.setdefault(0, _empty_slot())
    own = slot[1] if isinstance(slot[1], list) else []
    slot[1] = [CommentToken(lines, CommentMark(0), None), *own]


def _hoist_comments_above(parent: CommentedMap, key: str) -> None:
    """Comment lines between ``key:`` and its (now empty, ``[]``) block value moved
    above the key, where they stay whole-line comments."""
    slot: _Slot | None = parent.ca.items.get(key)
    tokens = slot[3] if slot is not None and len(slot) > 3 else None
    keys = list(parent)
    if slot is None or not isinstance(tokens, list) or not tokens or keys.index(key) == 0:
        return
    text = "".join(" " * (t.column or 0) + str(t.value).lstrip(" ") for t in tokens)
    before = keys[keys.index(key) - 1]
    _set_after_lines(parent, before, _after_lines(parent, before) + text)
    slot[3] = None
    parent[key].ca.comment = None


def _quick_after(node: object) -> str | None:
    """What :func:`_after_lines` gives for ``node`` when it is an item of the splice path
    still unparsed (a placeholder) whose own lines say it: "" when none follow it. None
    otherwise, and the caller reads it through ruamel (which parses a placeholder)."""
    tail = getattr(node, "c_tail", None)
    return tail() if callable(tail) else None


def remove_index(seq: CommentedSeq, index: int) -> str:
    """``del seq[index]``, keeping the comment lines that introduce the next node.

    ruamel keeps the comment and blank lines *after* a node's end-of-line comment on
    that node; they introduce what follows it. The lines before the removed node
    (introducing it) go with it, the lines after it are handed to its predecessor.
    Returns those lines when the sequence is now empty, for the caller to place.
    """
    lines = _quick_after(seq[index])
    if lines is None:
        lines = _after_lines(seq, index)
    if index > 0:
        before = _quick_after(seq[index - 1])
        if lines or (_after_lines(seq, index - 1) if before is None else before).strip():
            # (Blank lines alone before it are a separator, kept when it has none after it.)
            _set_after_lines(seq, index - 1, lines)
    del seq[index]
    if index == 0:
        if not seq:  # an empty list is written `[]`, without what ruamel kept at its end
            lines += _end_lines(seq)
            seq.ca.end = []
            return lines
        _set_before_first(seq, lines)
    return ""


def remove_key(item: CommentedMap, key: str) -> None:
    """``del item[key]``, keeping the comment lines between it and the next key."""
    keys = list(item)
    pos = keys.index(key)
    lines = _after_lines(item, key)
    if pos > 0 and (lines or _after_lines(item, keys[pos - 1]).strip()):
        _set_after_lines(item, keys[pos - 1], lines)
    del item[key]
    item.ca.items.pop(key, None)


def put_instances(item: CommentedMap, instances: Mapping[str, str], selected: list[str]) -> str:
    """Write a template's ``instances:`` (repo -> status; in the order of ``selected``,
    the repos its ``for_each`` selects, others after by name; none: the key goes) and
    its own status from them (:func:`coordination.catalog.selection.templates.template_outcome`).
    Returns that status. What a sync and an edit of an instance both write."""
    before = {str(k): str(v) for k, v in dict(item.get("instances") or {}).items()}
    order = {r: i for i, r in enumerate(selected)}
    after = dict(sorted(instances.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
    if after != before:
        put_field(item, "instances", after, TODO_KEYS)
    status = template_outcome(after, selected)
    if item.get("status", "pending") != status:
        put(item, "status", status, TODO_KEYS)
    return status


class MilestoneChange(TypedDict):
    """A milestone an edit completed, or reopened (``milestone.completed`` /
    ``milestone.reopened``): a sweep's sync, or `todo complete` / `todo update --status`."""

    plan: str
    milestone: str
    title: str
    todos: list[str]


def milestones_done(doc: CommentedMap) -> dict[tuple[str, str], MilestoneChange]:
    """Every milestone of the document that is done (each todo it lists completed), by
    (plan, milestone): compared before and after an edit, in the edit (under the
    catalog's lock), so a milestone is completed (or reopened) by exactly one edit."""
    done: dict[tuple[str, str], MilestoneChange] = {}
    status: dict[str, str] = {}  # todo -> its status: read once a milestone lists todos
    for plan in section(doc, "plans"):
        if not isinstance(plan, CommentedMap):
            continue
        for ms in plan.get("milestones") or ():
            if not isinstance(ms, dict):
                continue
            todos = [str(t) for t in ms.get("todos") or ()]
            if todos and not status:
                status = {str(t.get("id")): str(t.get("status") or "pending")
                          for t in section(doc, "todos") if isinstance(t, CommentedMap)}
            if todos and all(status.get(t, "pending") == "completed" for t in todos):
                key = (str(plan.get("id")), str(ms.get("id")))
                done[key] = MilestoneChange(plan=key[0], milestone=key[1],
                                            title=str(ms.get("title") or ""), todos=todos)
    return done


def milestone_changes(before: dict[tuple[str, str], MilestoneChange],
                      after: dict[tuple[str, str], MilestoneChange]
                      ) -> tuple[list[MilestoneChange], list[MilestoneChange]]:
    """(completed, reopened) between two :func:`milestones_done` of one edit."""
    return ([m for k, m in after.items() if k not in before],
            [m for k, m in before.items() if k not in after])
