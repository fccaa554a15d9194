"""The views of the cached catalog (coordination.catalog.reads.views) hold what the models hold.

For every catalog the suite has as a file (the demo's, the commented fixture, the
bench's shapes, one with every kind of field) and for hypothesis' small plans: the
view of the JSON the cache holds equals the validated models field by field, types
included (an enum the same member, a date a date, a nested model a view), and the
dry run's document of every plan is the same on either, and so is the spec a sweep
or a `todo run` freezes of it (byte for byte: its JSON), with what a start reads
beside (the webhooks, the limits, the unproven gates). The views' table of what
converts how is the models' shape (coordination.catalog.models.shape), checked here;
and sweep_catalog takes the models where a view will not do.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import shutil
from collections.abc import Callable
from enum import Enum
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given, settings
from pydantic import BaseModel

from coordination.catalog.file import cache, loader
from coordination.catalog.reads import live
from coordination.catalog import model_methods
from coordination.catalog.enums import TodoStatus
from coordination.catalog.model_methods import CacheDefaults, cache_of
from coordination.catalog.models import Cache, Catalog
from coordination.catalog.models import shape
from coordination.catalog.reads.cached import fleet_catalog, sweep_catalog
from coordination.catalog.reads.views import (
    ALIASES,
    MIXINS,
    SHAPES,
    VIEWS,
    View,
    catalog_view,
    is_view,
)
from coordination.dispatch.limits import limits_from_catalog
from coordination.errors import CoordError
from coordination.keys import Keys
from coordination.planner.documents import dry_run_document
from coordination.planner.validate import unproven_gates
from coordination.sweeps.notices.notify import targets_of
from coordination.sweeps.planning import Planning
from tests.unit.support.catalogs import COMMENTED, ROOT, catalog_from_edges
from tests.unit.support.planner import dags

EVERY_KIND = """\
version: 1
repos:
  - name: api
    path: repos/api
    tags: [svc]
    concurrency: 2
    breaker: {failures: 3, cooldown: 60}
    default_branch: main
    remote: origin
    cache: {env: [PY], inputs: [".env"], probes: ["python --version"]}
    pace: {rate: 10/hour, burst: 2}
  - {name: web, path: repos/web, tags: [svc, front], cache: true}
resources:
  - {name: db, capacity: 2, description: staging}
notify:
  - {url: "https://hooks.example.com/x", events: [sweep.finished], secret_env: HOOK_SECRET,
     format: slack}
order: {by: [runtime, dev], cycles: error}
approvers: {allowed_signers: signers}
coordination:
  issues:
    - {id: ISSUE-1, title: broken, status: resolved, priority: high, created: 2024-01-02,
       target: 2024-02-01, repos: [api], metadata: {team: core, n: 3, tags: [a]}}
  plans:
    - id: PLAN-1
      title: ship
      status: active
      repos: [api, web]
      milestones: [{id: MS-1, title: beta, due: 2024-03-01, todos: [TODO-3]}]
      completion_criteria: ["all green", {text: tests pass, check: "true"}]
      waves:
        - {name: canary, repos: [api], max_parallel: 1, soak: 10m, require: {success_rate: 0.5}}
        - {name: rest, tags: [front]}
      pace: {key: tag, rate: 5/10s}
    - id: PLAN-2
      title: change
      change: {branch: feat/x, base: main, land: push}
  todos:
    - {id: TODO-1, task: one, repo: api, plan: PLAN-1, run: "true", estimated_hours: 1,
       priority: critical, env: {A: 1, B: true}, resources: [db], wait_timeout: 10m,
       acceptance_criteria: ["ok", {text: lint, check: "true"}], blocked_by: [ISSUE-1],
       cache: false}
    - {id: TODO-2, task: gate, repo: web, plan: PLAN-1, blocked_by: [TODO-1],
       gate: {approvals: 1, from: [ana, bo], expires: 2h, on_expiry: rollback}}
    - {id: TODO-3, task: three, repo: web, run: "true", status: completed, blocked_by: [TODO-2],
       labels: [x], assignee: ana, actual_hours: 0.5, outputs: {URL: "http://x"}}
    - {id: TODO-4, task: four, repo: api, plan: PLAN-2, run: "true", commit: "fix it",
       estimated_hours: 2, retries: 2, timeout: 10}
    - {id: TODO-5, task: five, repo: web, plan: PLAN-2, run: "true", verify: true,
       blocked_by: [TODO-4], cache: {probes: [node -v]}, status: failed}
  dependencies:
    - {id: DEP-1, consumer: web, provider: api, type: build, version_constraint: ">=1",
       status: satisfied, validation: {command: "true", expected_pattern: "ok"},
       source: {file: package.json, line: 3}}
    - {id: DEP-2, consumer: api, provider: web, type: dev, indirect: true}
"""
#: Every kind of field, and plans a sweep can start (a change's repos in no cycle).
SWEEPABLE = EVERY_KIND.replace(
    "    - {id: DEP-2, consumer: api, provider: web, type: dev, indirect: true}\n", "")
assert SWEEPABLE != EVERY_KIND
#: A template (for_each:) and its synced instances: a view holds them, but a sweep
#: expands such a catalog, which takes the models.
TEMPLATED = SWEEPABLE.replace(
    "  dependencies:\n",
    "    - {id: TODO-6, task: each, for_each: 'tag:svc', plan: PLAN-1, run: 'true',\n"
    "       instances: {api: completed}}\n"
    "  dependencies:\n", 1)


def _copy(source: Path) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / "ecosystem.yaml"
        shutil.copyfile(source, path)
        return path
    return write


def _text(text: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / "ecosystem.yaml"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def _bench(shape_name: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(ROOT / "bench"))
            catalogs = importlib.import_module("_catalogs")
        todos = getattr(catalogs, shape_name)(12)
        for i, t in enumerate(todos):
            t["estimated_hours"] = 0.25 * (i % 3) or None
        return Path(catalogs.write_catalog(root / "ecosystem.yaml", todos))
    return write


#: Every catalog the suite has as a file, by name: what writes it into a directory.
CATALOGS: dict[str, Callable[[Path], Path]] = {
    "demo": _copy(ROOT / "ecosystem.yaml"),
    "commented": _copy(COMMENTED),
    "bench-flat": _bench("flat_todos"),
    "bench-levels": _bench("level_todos"),
    "every-kind": _text(EVERY_KIND),
    "sweepable": _text(SWEEPABLE),
    "templated": _text(TEMPLATED),
}


def cached_json(cat: Catalog) -> dict[str, object]:
    """What the cache's all-fields entry holds for ``cat`` (which it caches only when
    the JSON comes back equal to it)."""
    text = cat.model_dump_json()
    assert Catalog.model_validate_json(text) == cat, "not a catalog the cache keeps"
    data: dict[str, object] = json.loads(text)
    return data


def assert_same(view: object, model: object, where: str = "catalog") -> None:
    """``view`` holds what ``model`` holds: field by field, types included."""
    if isinstance(model, BaseModel):
        assert isinstance(view, View), f"{where}: {type(view).__name__}, not a view"
        assert view.model == type(model).__name__, where
        for name in type(model).model_fields:
            assert_same(getattr(view, name), getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        assert type(view) is list and len(view) == len(model), where
        for i, (v, m) in enumerate(zip(view, model, strict=True)):
            assert_same(v, m, f"{where}[{i}]")
    elif isinstance(model, dict):
        assert type(view) is dict and list(view) == list(model), where
        for k in model:
            assert_same(view[k], model[k], f"{where}[{k!r}]")
    elif isinstance(model, Enum):
        assert view is model, f"{where}: {view!r} is not {model!r}"
    else:
        assert type(view) is type(model) and view == model, f"{where}: {view!r} != {model!r}"


def assert_same_methods(view: Catalog, model: Catalog, base_dir: Path) -> None:
    """The methods both faces share answer the same on both."""
    for r in model.repos:
        assert_same(view.repo(r.name), r, f"repo({r.name})")
        assert view.repo(r.name).checkout(base_dir) == r.checkout(base_dir)  # type: ignore[union-attr]
        if r.pace is not None:
            assert view.repo(r.name).pace.interval == r.pace.interval  # type: ignore[union-attr]
    co = model.coordination
    for lookup, items in ((view.issue, co.issues), (view.todo, co.todos),
                          (view.dependency, co.dependencies), (view.plan, co.plans)):
        for item in items:
            assert_same(lookup(item.id), item, f"{lookup.__name__}({item.id})")
    for p in co.plans:
        assert_same(view.plan_todos(p.id), model.plan_todos(p.id), f"plan_todos({p.id})")
        for w, mw in zip(view.plan(p.id).waves, p.waves, strict=True):  # type: ignore[union-attr]
            assert w.selects("api", ["front"]) == mw.selects("api", ["front"])
    for t in co.todos:
        assert view.todo(t.id).is_template == t.is_template  # type: ignore[union-attr]
    assert view.repo("nowhere") is None and view.todo("TODO-999999") is None


def dry_runs(cat: Catalog, plan_id: str) -> list[object]:
    """The dry run's document (or its error) of ``plan_id`` with every option it takes."""
    out: list[object] = []
    for strategy in ("levels", "eager"):
        for again in (False, True):
            for sequential in (False, True):
                try:
                    out.append(dry_run_document(cat, plan_id, strategy=strategy, again=again,
                                                sequential=sequential, written=cat,
                                                p50_seconds={"TODO-100001": 30.0}))
                except CoordError as exc:
                    out.append((type(exc).__name__, str(exc), exc.hint))
    return out


def _outcome(build: Callable[[], object]) -> object:
    """What ``build`` gives (a spec as its JSON), or the error it raises."""
    try:
        built = build()
    except CoordError as exc:
        return (type(exc).__name__, str(exc), exc.hint)
    return built.to_json() if hasattr(built, "to_json") else built


def _planning(cat: Catalog, path: Path) -> Planning:
    """The planning of ``path`` (a sweep's, `todo run`'s) reading ``cat``."""
    planning = Planning(Keys("views"), path)
    planning.catalog = lambda: cat  # type: ignore[method-assign]
    return planning


def specs(cat: Catalog, path: Path, plan_id: str) -> list[object]:
    """The spec (its JSON, or the error) a sweep of ``plan_id`` freezes from ``cat``
    with every option it takes, and the next run of the plain one's (a resume)."""
    planning = _planning(cat, path)
    out = [_outcome(lambda: planning.plan_spec(
               plan_id, strategy=strategy, ignore_blockers=ignore, again=again,
               sequential=sequential, merge_chains=merge))
           for strategy, ignore, again, sequential, merge
           in product(("levels", "eager"), *[(False, True)] * 4)]
    try:
        old = planning.plan_spec(plan_id, strategy="levels", ignore_blockers=True, again=True)
    except CoordError:
        return out
    return [*out, _outcome(lambda: planning.resume_spec(old, sorted(old.todos)))]


def todo_specs(cat: Catalog, path: Path) -> list[object]:
    """The one-todo spec (`coord todo run`) of every todo, blockers ignored or not."""
    planning = _planning(cat, path)
    return [_outcome(lambda: planning.todo_spec(t.id, ignore_blockers=ignore))
            for t in cat.coordination.todos for ignore in (False, True)]


def start_reads(cat: Catalog) -> list[object]:
    """What a sweep's start reads of the catalog beside its spec: the webhooks it
    publishes, the limits that size the broker, the gates COORD_REQUIRE_APPROVERS
    refuses, each todo's cache."""
    return [targets_of(cat.notify), limits_from_catalog(cat), unproven_gates(cat),
            [vars(c) if isinstance(c, CacheDefaults) else c and {
                f: getattr(c, f) for f in Cache.model_fields}
             for t in cat.coordination.todos for c in [cache_of(t, cat.repo(t.repo))]]]


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_a_view_holds_what_the_models_hold(name: str, tmp_path: Path) -> None:
    path = CATALOGS[name](tmp_path)
    model = loader.load_catalog(path.read_bytes(), str(path))
    view = catalog_view(cached_json(model))
    assert_same(view, model)
    assert_same_methods(view, model, tmp_path)
    if not any(t.is_template for t in model.coordination.todos):  # a sweep expands those
        for plan in model.coordination.plans:
            assert dry_runs(view, plan.id) == dry_runs(model, plan.id), plan.id
            assert specs(view, path, plan.id) == specs(model, path, plan.id), plan.id
        assert todo_specs(view, path) == todo_specs(model, path)
        assert start_reads(view) == start_reads(model)


def test_cache_true_is_the_cache_models_default() -> None:
    """``cache: true`` gives what ``Cache()`` holds, for a model and a view alike."""
    assert vars(CacheDefaults()) == Cache().model_dump()
    assert list(vars(CacheDefaults())) == list(Cache.model_fields)


@settings(max_examples=40, deadline=None)
@given(dags(max_n=12))
def test_a_view_of_a_small_plan_plans_as_the_models(
        dag: tuple[int, list[tuple[int, int]], list[float | None]]) -> None:
    n, edges, hours = dag
    model = catalog_from_edges(n, edges, hours=hours)
    view = catalog_view(cached_json(model))
    assert_same(view, model)
    assert dry_runs(view, "PLAN-1") == dry_runs(model, "PLAN-1")
    path = Path("ecosystem.yaml")  # not read: its directory is the checkouts' base
    assert specs(view, path, "PLAN-1") == specs(model, path, "PLAN-1")


def test_the_views_table_is_the_models_shape() -> None:
    """A field added to a model and not to SHAPES (or converted otherwise) fails here:
    print the table again with `python -m coordination.catalog.models.shape`."""
    assert SHAPES == shape.shapes()
    assert ALIASES == shape.aliases()
    for name, model in shape.models().items():
        mixins = [b for b in model.__mro__ if b.__module__ == model_methods.__name__
                  and b.__name__.endswith("Methods")]
        assert mixins == ([MIXINS[name]] if name in MIXINS else []), name


def test_no_field_is_named_as_something_of_its_view() -> None:
    """A view sets a field that needs no conversion as its attribute: no field (nor the
    key it is written under) may be named as one of the view's methods or properties,
    which the field would hide (or hide the field)."""
    for name, model in shape.models().items():
        fields = set(model.model_fields) | {
            f.alias for f in model.model_fields.values() if f.alias}
        assert not fields & set(dir(VIEWS[name])), (name, sorted(fields & set(dir(VIEWS[name]))))


def test_a_models_methods_are_the_shared_ones() -> None:
    """A model defines no public method or property of its own (validators and
    serializers are private): what it does, its view does through the same mixin."""
    for name, model in shape.models().items():
        own = [k for k, v in vars(model).items() if not k.startswith(("_", "model_"))
               and (callable(v) or isinstance(v, property | classmethod | staticmethod))]
        assert own == [], f"{name}: {own} (move them into coordination.catalog.model_methods)"


def test_a_view_converts_a_field_when_first_read() -> None:
    data = cached_json(Catalog.model_validate({
        "version": 1, "repos": [{"name": "api"}],
        "coordination": {"issues": [{"id": "ISSUE-1", "title": "t", "created": "2024-01-02"}]}}))
    view = catalog_view(data)
    issue = view.coordination.issues[0]
    assert "created" not in vars(issue)
    assert issue.created == dt.date(2024, 1, 2) and vars(issue)["created"] is issue.created
    with pytest.raises(AttributeError):
        view.no_such_field  # type: ignore[attr-defined]  # noqa: B018


def _write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return _text(text)(root)


@pytest.mark.usefixtures("private_cache")
def test_sweep_catalog_is_a_view_of_a_warm_cache_and_the_models_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "plain", EVERY_KIND)
    cold = sweep_catalog(path)  # a miss: the store loads (and caches) the models
    assert isinstance(cold, Catalog)
    warm = sweep_catalog(path)
    assert is_view(warm)
    assert_same(warm, cold)
    assert sweep_catalog(path) is warm  # the same bytes: the same view, as the store's memo
    # a template: a sweep expands it, copying models
    templated = _write(tmp_path / "templated", TEMPLATED)
    sweep_catalog(templated)
    assert isinstance(sweep_catalog(templated), Catalog)
    # an edit: the models again (a miss), then a view of the new bytes
    path.write_text(EVERY_KIND.replace("title: ship", "title: shipped"), encoding="utf-8")
    assert isinstance(sweep_catalog(path), Catalog)
    edited = sweep_catalog(path)
    assert is_view(edited) and edited is not warm
    assert edited.plan("PLAN-1").title == "shipped"  # type: ignore[union-attr]
    # no cache directory: the models
    monkeypatch.setattr(cache, "default_cache_dir", lambda: None)
    assert isinstance(sweep_catalog(path), Catalog)


@pytest.mark.usefixtures("private_cache")
def test_init_reads_a_templated_catalog_as_a_view_of_a_warm_cache(tmp_path: Path) -> None:
    """`coord init` reads repos and dependencies only, never expands a template: a
    catalog holding one is a view of the warm cache too (no models to load), holding
    what the models hold."""
    templated = _write(tmp_path / "templated", TEMPLATED)
    cold = fleet_catalog(templated)  # a miss: the store loads (and caches) the models
    assert isinstance(cold, Catalog)
    warm = fleet_catalog(templated)
    assert is_view(warm)
    assert_same(warm, cold)
    assert [r.name for r in warm.repos] == [r.name for r in cold.repos]
    assert [d.id for d in warm.coordination.dependencies] == ["DEP-1"]
    # a sweep, which expands it, still takes the models
    assert isinstance(sweep_catalog(templated), Catalog)


@pytest.mark.usefixtures("private_cache")
def test_a_sweep_plans_a_view_of_a_warm_cache_as_the_models(tmp_path: Path) -> None:
    """A sweep's planning reads the catalog through sweep_catalog: the models on a miss
    (or for templates), then a view; the spec is the same byte for byte."""
    for name in ("sweepable", "templated"):
        root = tmp_path / name
        root.mkdir()
        path = CATALOGS[name](root)
        planning = Planning(Keys("views"), path)
        cold = planning.catalog()
        assert isinstance(cold, Catalog)
        cold_specs = specs(cold, path, "PLAN-1") + specs(cold, path, "PLAN-2")
        warm = planning.catalog()
        assert is_view(warm) == (name == "sweepable"), name
        assert specs(warm, path, "PLAN-1") + specs(warm, path, "PLAN-2") == cold_specs, name
        assert [s for s in cold_specs if isinstance(s, str)], "no spec was built"


@pytest.mark.usefixtures("private_cache")
def test_a_view_shows_a_live_sweeps_running_todos(tmp_path: Path) -> None:
    path = _write(tmp_path, EVERY_KIND)
    sweep_catalog(path)
    plain = sweep_catalog(path)
    live.set_overlay(path, {"TODO-1": "in_progress"})
    try:
        view = sweep_catalog(path)
        assert is_view(view)
        todo = view.todo("TODO-1")
        assert todo is not None and todo.status is TodoStatus.in_progress
        assert sweep_catalog(path) is view
    finally:
        live.set_overlay(path, {})
    assert sweep_catalog(path) is plain
    assert plain.todo("TODO-1").status is TodoStatus.pending  # type: ignore[union-attr]
