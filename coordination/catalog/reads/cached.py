"""Reads answered from the validated-catalog cache as plain JSON data.

A read that only filters and prints (``coord todo list``) needs neither the
Pydantic models nor ruamel: the cache holds the catalog exactly as validated,
as JSON, and ``json.loads`` of it is all the work. On a miss (the file changed,
or a new version of coord) the catalog is loaded and validated by
:class:`~coordination.catalog.file.store.CatalogStore` as every command does, which
fills the cache for the next read.

Data here is what ``model_dump(mode="json")`` of the models gives, so a
command prints the same JSON document either way. Anything but the happy path
(an unknown repo or plan) is handed to the manager, which raises the usual
error with its suggestions.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.catalog.file import cache
from coordination.catalog.reads import live

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.jsonable import JSONObject


def catalog_data(path: str | Path) -> cache.CatalogData:
    """The validated catalog of ``path`` as JSON data (cached, or loaded and cached),
    with a live sweep's running todos ``in_progress`` (:mod:`coordination.catalog.reads.live`)."""
    path = Path(path)
    data = _catalog_data(path)
    if live.overlay_set():
        overlaid: cache.CatalogData = live.overlaid_data(data, live.overlay(path))
        return overlaid
    return data


#: The views :func:`sweep_catalog` gave last, by cache, file bytes (their digest) and
#: live overlay, as the store keeps the models it loaded: a sweep's command reads its
#: catalog four times (its checks, its spec, the broker's limits, the webhooks), each
#: time the same bytes. A view is read-only, so it is shared. Each is kept with whether
#: a todo of it is a template (a view :func:`sweep_catalog` must not give).
_VIEWS: dict[tuple[object, ...], tuple[Catalog, bool]] = {}
_VIEWS_LOCK = threading.Lock()
_VIEWS_KEPT = 2


def sweep_catalog(path: str | Path) -> Catalog:
    """The validated catalog of ``path`` for a command that reads it as written (a
    sweep's checks and plan, its dry run): on a warm cache, a view of the cache's JSON
    (:mod:`coordination.catalog.reads.views`: no pydantic, no models), with a live sweep's
    running todos ``in_progress`` as :meth:`CatalogStore.load` shows them; the same
    view again while the file's bytes and the live todos stay the same.

    The models, loaded by the store as every command loads them, when the view is not
    for this catalog: the cache has no entry for the file's bytes (a new or edited
    file, a new version of coord, no cache directory, an entry that cannot be read:
    the load fills it for the next command), or a todo is a template (``for_each:``),
    which expanding copies model by model
    (:func:`coordination.catalog.selection.templates.expand`)."""
    return _view_or_load(Path(path), templates=False)


def fleet_catalog(path: str | Path) -> Catalog:
    """The validated catalog of ``path`` for a command that reads its repos and
    dependencies only (``coord init``, ``init --check``): :func:`sweep_catalog`'s view
    of a warm cache, a catalog holding templates (``for_each:``) included, since
    nothing here expands one (0.6 loaded the models for it: 1.1-1.3x the CPU of
    ``init --check`` over 1,000 checkouts)."""
    return _view_or_load(Path(path), templates=True)


def _view_or_load(path: Path, templates: bool) -> Catalog:
    """A view of the warm cache's entry for ``path``'s bytes (``templates``: also when
    a todo is a template), else the models the store loads."""
    cache_dir = cache.default_cache_dir()
    token = cache.digest(cache.read_catalog_bytes(path, cache.max_catalog_bytes()))
    running = live.overlay(path) if live.overlay_set() else {}
    key = (cache_dir, token, tuple(sorted(running.items())))
    with _VIEWS_LOCK:
        kept = _VIEWS.get(key)
    if kept is not None and (templates or not kept[1]):
        return kept[0]
    data = cache.cached_data(cache_dir, token)
    templated = data is not None and any(t.get("for_each") is not None
                                         for t in data["coordination"].get("todos", []))
    if data is None or (templated and not templates):
        # lazy: the store and models, only when a view will not do
        from coordination.catalog.file.store import CatalogStore

        return CatalogStore(path).load()
    # lazy: the views' classes are built at import; a list of todos needs none of them
    from coordination.catalog.reads.views import catalog_view

    if running:
        data = live.overlaid_data(data, running)
    view = catalog_view(data)
    with _VIEWS_LOCK:
        _VIEWS[key] = (view, templated)
        while len(_VIEWS) > _VIEWS_KEPT:
            _VIEWS.pop(next(iter(_VIEWS)))
    return view


def _catalog_data(path: Path) -> cache.CatalogData:
    data = cache.read_catalog_bytes(path, cache.max_catalog_bytes())
    token = cache.digest(data)
    cache_dir = cache.default_cache_dir()
    hit = cache.cached_data(cache_dir, token)
    if hit is not None:
        return hit
    # lazy: a miss: the store, models and pydantic are imported only now (a warm read
    # needs none of them; `coord todo list` imports this module).
    from coordination.catalog.file.store import CatalogStore

    store = CatalogStore(path)
    cat = store._validated(data)  # validates (raises as every load does), caches
    hit = cache.cached_data(cache_dir, token)
    if hit is None:  # the store's own entry was there (an edit wrote it): add ours
        store.cache_all_fields(token, cat)
        hit = cache.cached_data(cache_dir, token)
    if hit is not None:
        return hit
    loaded: cache.CatalogData = json.loads(cat.model_dump_json())
    return loaded


def list_todos(
    path: str | Path, *, status: str | None = None, repo: str | None = None,
    assignee: str | None = None, plan: str | None = None,
) -> list[JSONObject]:
    """What ``CoordinationManager.reads.list_todos`` returns, as JSON data, in catalog order."""
    cat = catalog_data(path)
    co = cat["coordination"]
    todos = co.get("todos", [])
    known_repo = repo is None or any(r.get("name") == repo for r in cat["repos"])
    the_plan = None if plan is None else next(
        (p for p in co.get("plans", []) if p.get("id") == plan), None)
    # A status no todo has may be one that does not exist: the manager says which.
    odd_status = status is not None and all(t.get("status") != status for t in todos)
    # A repo's todos include its instances of templates (TODO-010[api]): expanded by
    # the manager, with the models (a catalog without templates stays on this path).
    of_templates = repo is not None and any(t.get("for_each") for t in todos)
    if not known_repo or (plan is not None and the_plan is None) or odd_status or of_templates:
        return _via_manager(path, status=status, repo=repo, assignee=assignee, plan=plan)
    if the_plan is not None:
        listed = {t for ms in the_plan.get("milestones", []) for t in ms.get("todos", [])}
        todos = [t for t in todos if t.get("plan") == plan or t["id"] in listed]
    return [
        t for t in todos
        if (status is None or t.get("status") == status)
        and (repo is None or t.get("repo") == repo)
        and (assignee is None or t.get("assignee") == assignee)
    ]


def _via_manager(path: str | Path, **filters: str | None) -> list[JSONObject]:
    # lazy: off the warm path of `coord todo list`, like the store above: only an odd
    # filter gets here.
    from coordination.catalog.manager import CoordinationManager

    todos = CoordinationManager(path).reads.list_todos(**filters)
    return [t.model_dump(mode="json") for t in todos]
