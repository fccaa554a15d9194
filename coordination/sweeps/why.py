"""`coord why TODO [--sweep ID]`: did the todo's last run reuse an earlier success, and
if not, what changed.

The worker that started the todo computed its key and, on a miss, compared it with the
nearest earlier entry of the todo there, where the checkout is (``workers/caching.py``);
this only reads what it noted (``ResultCache.lookup``), so `why` works from any machine.

A template's id (``TODO-010``) means all its instances, as ``coord events --todo``
reads it: those of the sweep (``--sweep``), else those its ``for_each`` selects now;
each one's document (one MGET for all), counted by outcome and grouped by reason
(:func:`why_template`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict, TypeGuard

from coordination.catalog.models import Catalog, cache_of
from coordination.catalog.file.store import CatalogStore
from coordination.catalog.selection.templates import Problems, expand, split_instance
from coordination.errors import NotFoundError, UsageError
from coordination.runtime.cache import Lookup
from coordination.runtime.context import Runtime
from coordination.sweeps.adhoc import RUN_PREFIX
from coordination.sweeps.reading import record
from coordination.sweeps.spec_store import load_spec


class WhyDocument(TypedDict):
    """``coord why --json``."""

    todo_id: str
    sweep_id: str | None
    run: int | None
    #: hit | miss | bypassed (--no-cache: not looked up) | no_key (none could be
    #: computed: ``error``) | refused (an entry was stored under the key, but its seal
    #: failed: ``refused`` says why; the todo ran) | no_record (no lookup noted: cache
    #: off, or never ran)
    outcome: str
    cache: bool | None  # cache: on for the todo in the catalog (None: no catalog here)
    key: str | None
    cached_from: dict[str, Any] | None  # hit: the run reused
    nearest: dict[str, Any] | None  # miss: the entry compared with (None: none earlier)
    changed: dict[str, Any]  # miss: the parts that differ from nearest
    error: str | None
    refused: str | None  # refused: why the entry under the key was not reused
    parts: dict[str, Any]  # this key's parts (names and counts, never values)


class WhyGroup(TypedDict):
    """Instances of a template with the same outcome for the same reason."""

    outcome: str
    reason: str
    count: int
    instances: list[str]  # every one (the human view names ten and counts the rest)


class TemplateWhyDocument(TypedDict):
    """``coord why TEMPLATE --json``: every instance's :class:`WhyDocument`, counted."""

    todo_id: str  # the template
    template: bool  # True (tells it from a WhyDocument)
    sweep_id: str | None
    instances: int
    outcomes: dict[str, int]  # outcome -> how many instances
    groups: list[WhyGroup]  # by outcome, then reason; the largest first
    each: dict[str, WhyDocument]  # instance -> its document


def why(rt: Runtime, todo_id: str, *, sweep_id: str | None = None,
        catalog_path: Path | None = None) -> WhyDocument | TemplateWhyDocument:
    """The document of `coord why` (see the module docstring): a template's id gives
    :func:`why_template`'s."""
    if not todo_id.startswith(("TODO-", RUN_PREFIX)):  # RUN-<repo>: `coord run --cache`
        raise UsageError(f"{todo_id!r} is not a todo id",
                         hint="e.g. coord why TODO-004, or coord why RUN-api")
    catalog = (CatalogStore(catalog_path).load()
               if catalog_path is not None and catalog_path.exists() else None)
    spec_todos: list[str] | None = None
    if sweep_id is not None:
        spec = load_spec(rt, sweep_id, record(rt, sweep_id))
        spec_todos = list(spec.todos) if spec is not None else []
    tid, repo = split_instance(todo_id)
    template = catalog.todo(tid) if catalog is not None else None
    prefix = todo_id + "["
    if repo is None and (template is not None and template.for_each is not None or (
            spec_todos is not None and todo_id not in spec_todos
            and any(t.startswith(prefix) for t in spec_todos))):
        return why_template(rt, todo_id, sweep_id=sweep_id, catalog=catalog,
                            catalog_path=catalog_path, spec_todos=spec_todos)
    if spec_todos is not None and todo_id not in spec_todos:
        raise NotFoundError(f"sweep {sweep_id} has no todo {todo_id}",
                            hint=f"see `coord sweep status {sweep_id}`")
    cache_on = _cache_on(catalog, todo_id)
    note = rt.results().lookup(todo_id, sweep_id)
    if note is None and cache_on is None and catalog is not None:
        raise NotFoundError(f"unknown todo {todo_id}", hint="see `coord todo list`")
    return _document(todo_id, sweep_id, cache_on, note)


def _cache_on(catalog: Catalog | None, todo_id: str) -> bool | None:
    """Is ``cache:`` on for the todo in the catalog (an instance: its template's, in its
    repo, as the expansion makes it; read without expanding, so a template whose
    for_each selects nothing now still answers); None: no such todo, or no catalog."""
    if catalog is None:
        return None
    tid, repo = split_instance(todo_id)
    todo = catalog.todo(tid)
    if todo is None or (repo is not None) != (todo.for_each is not None):
        return None
    return cache_of(todo, catalog.repo(repo if repo is not None else todo.repo)) is not None


def _document(todo_id: str, sweep_id: str | None, cache_on: bool | None,
              note: Lookup | None) -> WhyDocument:
    doc: WhyDocument = {
        "todo_id": todo_id, "sweep_id": sweep_id, "run": None, "outcome": "no_record",
        "cache": cache_on, "key": None, "cached_from": None, "nearest": None, "changed": {},
        "error": None, "refused": None, "parts": {},
    }
    if note is None:
        return doc
    outcome = ("hit" if note.get("hit") else "no_key" if note.get("error") and not note.get("key")
               else "bypassed" if note.get("bypassed") else "refused" if note.get("refused")
               else "miss")
    doc.update({
        "sweep_id": note.get("sweep_id"), "run": note.get("run"), "outcome": outcome,
        "key": note.get("key"), "cached_from": note.get("cached_from"),
        "nearest": note.get("nearest"), "changed": note.get("changed") or {},
        "error": note.get("error"), "refused": note.get("refused"),
        "parts": note.get("parts") or {},
    })
    return doc


def is_template(doc: WhyDocument | TemplateWhyDocument) -> TypeGuard[TemplateWhyDocument]:
    return bool(doc.get("template"))


def why_template(rt: Runtime, template_id: str, *, sweep_id: str | None,
                 catalog: Catalog | None, catalog_path: Path | None,
                 spec_todos: list[str] | None) -> TemplateWhyDocument:
    """Every instance of ``template_id``: those of the sweep (``spec_todos``), else those
    its ``for_each`` selects now; their lookups read at once, counted by outcome and
    grouped by reason (:func:`reason`)."""
    prefix = template_id + "["
    if spec_todos is not None:
        ids = [t for t in spec_todos if t.startswith(prefix) and t.endswith("]")]
        if not ids:
            raise NotFoundError(f"sweep {sweep_id} has no instance of {template_id}",
                                hint=f"see `coord sweep status {sweep_id}`")
    else:
        assert catalog is not None and catalog_path is not None
        problems: Problems = {}
        wide = expand(catalog, catalog_path.resolve().parent, problems=problems)
        ids = [t.id for t in wide.coordination.todos if t.id.startswith(prefix)]
        if not ids:
            got = problems.get(template_id)
            raise UsageError(f"{template_id} has no instances now"
                             + (f": {got.summary}" if got else ""),
                             hint="name a sweep that ran them (--sweep ID), or one instance "
                             f"(coord why '{template_id}[REPO]')")
    notes = rt.results().lookups(ids, sweep_id)
    each = {t: _document(t, sweep_id, _cache_on(catalog, t), notes.get(t)) for t in ids}
    outcomes: dict[str, int] = {}
    by: dict[tuple[str, str], list[str]] = {}
    for t, d in each.items():
        outcomes[d["outcome"]] = outcomes.get(d["outcome"], 0) + 1
        by.setdefault((d["outcome"], reason(d)), []).append(t)
    order = {o: i for i, o in enumerate(OUTCOMES)}
    groups: list[WhyGroup] = [
        {"outcome": o, "reason": r, "count": len(ts), "instances": ts}
        for (o, r), ts in sorted(by.items(), key=lambda kv: (order.get(kv[0][0], 99),
                                                             -len(kv[1]), kv[0][1]))]
    return {"todo_id": template_id, "template": True, "sweep_id": sweep_id,
            "instances": len(ids), "outcomes": outcomes, "groups": groups, "each": each}


#: The outcomes in the order a summary says them.
OUTCOMES = ("hit", "miss", "bypassed", "refused", "no_key", "no_record")


def reason(doc: WhyDocument) -> str:
    """One instance's outcome said the same way for every instance it applies to (no
    instance's own names: paths, upstream ids), so that a template's instances group:
    a miss by the kinds of parts that changed, with env names and probe commands (the
    template's, the same for all)."""
    outcome = doc["outcome"]
    if outcome == "hit":
        return "reused an earlier success"
    if outcome == "bypassed":
        return "--no-cache: ran without looking"
    if outcome == "refused":
        return "the entry stored under its key failed its seal, so it ran"
    if outcome == "no_key":
        return f"no key: {doc['error']}"
    if outcome == "no_record":
        return ("cache is off for it" if doc["cache"] is False else
                "no lookup recorded (not run with cache: on, or expired)")
    if doc["nearest"] is None:
        return "no earlier success stored (first run, or expired)"
    changed = doc["changed"]
    parts: list[str] = []
    if changed.get("paths") or changed.get("tree"):
        parts.append("files changed")
    if changed.get("inputs"):
        parts.append("untracked inputs changed")
    if changed.get("env"):
        parts.append("env changed: " + ", ".join(changed["env"]))
    if changed.get("command"):
        parts.append("the command changed")
    if changed.get("cwd"):
        parts.append("the working directory changed")
    if changed.get("probes"):
        parts.append("probe output changed: " + ", ".join(
            f"`{p.get('probe')}`" for p in changed["probes"]))
    if changed.get("upstream"):
        parts.append("upstream todos' keys changed")
    return "; ".join(parts) or "no part differs"
