"""`coord why TODO [--sweep ID]`: did the todo's last run reuse an earlier success, and
if not, what changed.

The worker that started the todo computed its key and, on a miss, compared it with the
nearest earlier entry of the todo there, where the checkout is (``workers/caching.py``);
this only reads what it noted (``ResultCache.lookup``), so `why` works from any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.models import cache_of
from coordination.catalog.store import CatalogStore
from coordination.catalog.templates import expand
from coordination.errors import NotFoundError, UsageError
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


def why(rt: Runtime, todo_id: str, *, sweep_id: str | None = None,
        catalog_path: Path | None = None) -> WhyDocument:
    """The document of `coord why` (see the module docstring)."""
    if not todo_id.startswith(("TODO-", RUN_PREFIX)):  # RUN-<repo>: `coord run --cache`
        raise UsageError(f"{todo_id!r} is not a todo id",
                         hint="e.g. coord why TODO-004, or coord why RUN-api")
    cache_on: bool | None = None
    if catalog_path is not None and catalog_path.exists():
        catalog = CatalogStore(catalog_path).load()
        if "[" in todo_id:  # a template's instance, TODO-010[api]: as the sweep ran it
            catalog = expand(catalog, catalog_path.resolve().parent)
        todo = catalog.todo(todo_id)
        if todo is not None:
            cache_on = cache_of(todo, catalog.repo(todo.repo)) is not None
    if sweep_id is not None:
        spec = load_spec(rt, sweep_id, record(rt, sweep_id))
        if spec is None or todo_id not in spec.todos:
            raise NotFoundError(f"sweep {sweep_id} has no todo {todo_id}",
                                hint=f"see `coord sweep status {sweep_id}`")
    note = rt.results().lookup(todo_id, sweep_id)
    doc: WhyDocument = {
        "todo_id": todo_id, "sweep_id": sweep_id, "run": None, "outcome": "no_record",
        "cache": cache_on, "key": None, "cached_from": None, "nearest": None, "changed": {},
        "error": None, "refused": None, "parts": {},
    }
    if note is None:
        if cache_on is None and catalog_path is not None and catalog_path.exists():
            raise NotFoundError(f"unknown todo {todo_id}", hint="see `coord todo list`")
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
