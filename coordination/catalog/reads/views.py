"""Read-only views of the validated catalog, built from the cache's JSON without pydantic.

The cache (:mod:`coordination.catalog.file.cache`) holds every validated catalog as
``Catalog.model_dump_json()`` writes it, and only catalogs that come back equal from it.
A view turns that JSON back into what the models hold, with their attribute API: every
field by its name, a nested model as its view, an enum as the very member of
:mod:`coordination.catalog.enums`, a date as a ``datetime.date`` (a ``due:`` as an aware
``datetime.datetime``); and the models' methods
(:mod:`coordination.catalog.model_methods`, shared by both). A command that only reads
the catalog as written (`plan sweep --dry-run`, the checks before a sweep starts) then
never imports pydantic nor the models (about 0.12 s).

What converts how is not written twice: :data:`SHAPES` and :data:`ALIASES` are
:mod:`coordination.catalog.models.shape` written out, and a unit test checks them equal
to the models. A field that converts is converted on its first read and kept (a sweep
reads a few fields of a few hundred todos, not every field of every item); the others
are the JSON's values, in the view's attributes from the start (a plain attribute read,
as a model's: a 400-todo sweep reads some 8,000 of them).

A view is typed as its model (:func:`catalog_view` returns a ``Catalog`` to mypy, as
``Runtime.reader`` hands out its settings); it has no ``model_*`` methods, so a caller
that copies, dumps or expands a catalog takes the models
(:func:`coordination.catalog.reads.cached.sweep_catalog` says when). Stdlib only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, cast

from coordination.catalog import enums
from coordination.catalog.model_methods import (
    CatalogMethods,
    PaceMethods,
    RepoMethods,
    TodoMethods,
    WaveMethods,
)

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.jsonable import JSONObject

#: Model -> field -> how its JSON value becomes what the model holds, for the fields
#: where it differs (the others are read as they are): ``date``, an enum of
#: :mod:`coordination.catalog.enums`, a model (its view, from an object), ``[...]`` a
#: list of, ``{...}`` a dict of. Written out from :func:`coordination.catalog.models.
#: shape.shapes` (``python -m coordination.catalog.models.shape``); a test keeps it equal.
SHAPES: dict[str, dict[str, str]] = {
    "Catalog": {"repos": "[Repo]", "resources": "[Resource]", "coordination": "Coordination",
                "notify": "[NotifyTarget]", "approvers": "Approvers", "order": "Order"},
    "Repo": {"breaker": "Breaker", "cache": "Cache", "pace": "Pace", "forge": "RepoForge"},
    "Resource": {},
    "Coordination": {"issues": "[Issue]", "plans": "[Plan]", "todos": "[Todo]",
                     "dependencies": "[Dependency]"},
    "NotifyTarget": {},
    "Approvers": {},
    "Order": {"by": "[DependencyType]"},
    "Breaker": {},
    "Cache": {},
    "Pace": {},
    "RepoForge": {},
    "Issue": {"status": "IssueStatus", "priority": "Priority", "created": "date",
              "updated": "date", "target": "date"},
    "Plan": {"status": "PlanStatus", "milestones": "[Milestone]",
             "completion_criteria": "[Criterion]", "waves": "[Wave]", "change": "Change",
             "pace": "Pace", "schedule": "Schedule", "on": "Triggers", "due": "datetime"},
    "Todo": {"instances": "{TodoStatus}", "cache": "Cache", "status": "TodoStatus",
             "priority": "Priority", "acceptance_criteria": "[Criterion]", "gate": "Gate",
             "due": "datetime"},
    "Dependency": {"type": "DependencyType", "status": "DependencyStatus",
                   "validation": "Validation", "source": "DependencySource"},
    "Milestone": {"due": "date"},
    "Criterion": {},
    "Wave": {"require": "WaveRequire"},
    "Change": {},
    "Schedule": {},
    "Triggers": {"push": "PushTrigger"},
    "Gate": {},
    "Validation": {},
    "DependencySource": {"type": "DependencyType"},
    "WaveRequire": {},
    "PushTrigger": {},
}
#: Model -> field -> the key its JSON writes it under, where that differs.
ALIASES: dict[str, dict[str, str]] = {"Gate": {"from_": "from"}}
#: The models whose methods a view has too (the mixins the model classes inherit).
MIXINS: dict[str, type] = {"Catalog": CatalogMethods, "Todo": TodoMethods,
                           "Repo": RepoMethods, "Pace": PaceMethods, "Wave": WaveMethods}

Convert = Callable[[object], object]


class View:
    """One model's view: the JSON object it reads, and the fields read so far."""

    model: ClassVar[str] = ""  # the model's name (SHAPES)
    _convert: ClassVar[dict[str, Convert]] = {}  # field -> its converter (SHAPES)
    _keys: ClassVar[dict[str, str]] = {}  # field -> its JSON key, where they differ
    _lazy: ClassVar[tuple[str, ...]] = ()  # the JSON keys read through __getattr__

    def __init__(self, data: Mapping[str, object] | None = None, /, **fields: object) -> None:
        """A view of ``data`` (a JSON object of the cache), or of ``fields`` as the model
        holds them (every field: ``Order(by=[...], cycles="group")`` as for the model).
        The fields that need no conversion are set at once; the rest (:attr:`_lazy`:
        those of :data:`SHAPES`, and a key under another name) wait for a read."""
        d = self.__dict__
        if data is not None:
            d.update(data)
            for k in self._lazy:
                d.pop(k, None)
        d["_data"] = data if data is not None else {}
        d.update(fields)

    def __getattr__(self, name: str) -> object:
        # Only for a field not read yet (a read one, or a plain one, is in the
        # instance's __dict__).
        data = self.__dict__.get("_data")
        key = self._keys.get(name, name)
        if data is None or name.startswith("__") or key not in data:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = data[key]
        convert = self._convert.get(name)
        if convert is not None and value is not None:
            value = convert(value)
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        field = {key: name for name, key in self._keys.items()}
        names = [field.get(k, k) for k in self.__dict__["_data"]] or [
            k for k in self.__dict__ if not k.startswith("_")]
        return f"{self.model}View({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


def _converter(spec: str) -> Convert:
    """What turns a JSON value of ``spec`` (see :data:`SHAPES`) into the model's."""
    if spec.startswith("["):
        each = _converter(spec[1:-1])
        return lambda v: [each(x) for x in cast("list[object]", v)]
    if spec.startswith("{"):
        value = _converter(spec[1:-1])
        return lambda v: {k: value(x) for k, x in cast("dict[str, object]", v).items()}
    if spec == "date":
        return lambda v: dt.date.fromisoformat(cast("str", v))
    if spec == "datetime":
        return lambda v: dt.datetime.fromisoformat(cast("str", v))
    enum = getattr(enums, spec, None)
    if enum is not None:
        return cast("Convert", enum)
    view = VIEWS[spec]
    # A union converts only its objects: `cache: true`, a criterion's plain text stay.
    return lambda v: view(cast("JSONObject", v)) if isinstance(v, dict) else v


def _view_class(model: str) -> type[View]:
    bases = (MIXINS[model], View) if model in MIXINS else (View,)
    attrs: dict[str, object] = {"model": model, "_keys": ALIASES.get(model, {})}
    if model == "Catalog":  # CatalogMethods' lookups, None until built on first use
        attrs.update(dict.fromkeys(("_repos", "_issues", "_plans", "_todos", "_deps")))
    return type(f"{model}View", bases, attrs)


VIEWS: dict[str, type[View]] = {model: _view_class(model) for model in SHAPES}
for _model, _fields in SHAPES.items():
    VIEWS[_model]._convert = {f: _converter(spec) for f, spec in _fields.items()}
    VIEWS[_model]._lazy = (*_fields, *ALIASES.get(_model, {}).values())


def catalog_view(data: Mapping[str, object]) -> Catalog:
    """The view of a validated catalog's JSON (the cache's all-fields entry), typed as
    the model it stands for."""
    return cast("Catalog", VIEWS["Catalog"](data))


def is_view(obj: object) -> bool:
    """Is ``obj`` a view (not a model)?"""
    return isinstance(obj, View)
