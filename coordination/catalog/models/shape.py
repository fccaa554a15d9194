"""The models' shape as :mod:`coordination.catalog.reads.views` reads it: for each model of a
catalog, each field and how its JSON value becomes what the model holds.

:data:`coordination.catalog.reads.views.SHAPES` and ``ALIASES`` are this, written out
(so a view imports no pydantic); ``tests/unit/catalog/test_views.py`` checks them
equal to :func:`shapes` and :func:`aliases`, so a field added to a model and not to
the views fails there. Print them again with
``python -m coordination.catalog.models.shape``.

A field's *spec* says what to convert, and nothing when its JSON value is already
what the model holds (text, numbers, booleans, literals, free-form dicts):

- ``date``: a ``datetime.date`` from its ISO text; ``datetime``: an aware
  ``datetime.datetime`` from its ISO text (``due:``);
- an enum's name (of :mod:`coordination.catalog.enums`): that enum's member;
- a model's name: its view, from a JSON object (a union such as ``bool | Cache`` or
  ``str | Criterion`` converts only the objects; None stays None everywhere);
- ``[spec]``: a list of such; ``{spec}``: a dict whose values are such.

Every field is in the cached JSON (it holds the defaults too), so the table names only
the fields to convert, and every model (a model with none maps to ``{}``).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from enum import Enum

from pydantic import BaseModel

from coordination.catalog import enums
from coordination.catalog.models import Catalog

_PLAIN = (str, int, float, bool, object, type(None))


def spec_of(annotation: object, found: dict[str, type[BaseModel]]) -> str:
    """The spec of a field's type; each model met is added to ``found`` by name."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return spec_of(args[0], found)
    if origin in (typing.Union, types.UnionType):
        specs = {s for s in (spec_of(a, found) for a in args) if s}
        if len(specs) > 1:
            raise TypeError(f"{annotation}: a view converts one kind of value of a union")
        return specs.pop() if specs else ""
    if origin is list:
        inner = spec_of(args[0], found)
        return f"[{inner}]" if inner else ""
    if origin is dict:
        inner = spec_of(args[1], found)
        return f"{{{inner}}}" if inner else ""
    if origin is typing.Literal:
        return ""
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            found[annotation.__name__] = annotation
            return annotation.__name__
        if issubclass(annotation, Enum):
            name: str = annotation.__name__
            if getattr(enums, name, None) is not annotation:
                raise TypeError(f"{annotation}: the catalog's enums are coordination.catalog.enums'")
            return name
        if annotation is dt.date:
            return "date"
        if annotation is dt.datetime:
            return "datetime"
        if annotation in _PLAIN:
            return ""
    raise TypeError(f"{annotation}: no view of this type (coordination.catalog.reads.views)")


def models() -> dict[str, type[BaseModel]]:
    """Every model a catalog holds, by name: :class:`Catalog` and the models its fields
    name, transitively (in the order met)."""
    out: dict[str, type[BaseModel]] = {"Catalog": Catalog}
    todo: list[type[BaseModel]] = [Catalog]
    while todo:
        model = todo.pop(0)
        for info in model.model_fields.values():
            found: dict[str, type[BaseModel]] = {}
            spec_of(info.annotation, found)
            for name, m in found.items():
                if name not in out:
                    out[name] = m
                    todo.append(m)
    return out


def shapes() -> dict[str, dict[str, str]]:
    """Model name -> field -> spec (see the module), of every model of :func:`models`; only
    the fields whose JSON value is converted (a view reads the others as they are)."""
    return {name: {f: spec for f, info in m.model_fields.items()
                   if (spec := spec_of(info.annotation, {}))}
            for name, m in models().items()}


def aliases() -> dict[str, dict[str, str]]:
    """Model name -> field -> the key its JSON writes it under, where that differs
    (``Gate.from_`` is ``from``)."""
    out: dict[str, dict[str, str]] = {}
    for name, m in models().items():
        for f, info in m.model_fields.items():
            if info.alias is not None and info.alias != f:
                out.setdefault(name, {})[f] = info.alias
    return out


if __name__ == "__main__":
    import pprint

    print("SHAPES: dict[str, dict[str, str]] = " + pprint.pformat(shapes(), sort_dicts=False))
    print("ALIASES: dict[str, dict[str, str]] = " + pprint.pformat(aliases(), sort_dicts=False))
