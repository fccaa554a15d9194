"""The values of the catalog's structured fields on the command line (``--gate``,
``--wave``, ``--pace``, ``--breaker``, ``--cache``), in one of two forms:

- compact: ``KEY=VALUE`` pairs joined by commas, a list's items joined by ``+``, a
  nested field by a dot: ``name=canary,repos=api+web,max_parallel=1,soak=10m,
  require.success_rate=0.9``; ``approvals=2,from=ana+bo,expires=24h``;
- a YAML flow mapping, read by the catalog's own loader: ``{name: canary, repos: [api]}``
  (for values holding a comma or a ``+``: ``{probes: ["python -c 'print(1+1)'"]}``).

This only turns the text into the mapping the catalog would hold; whether the mapping
is valid is the loader's to say, when the store validates the edited catalog (its
message, exit 2, nothing written). Which keys take a list and which take text is read
from the field's model, so ``from=ana`` is ``[ana]`` and ``name=1`` stays the text "1".
"""

from __future__ import annotations

import types
import typing
from typing import Literal

from pydantic import BaseModel

from coordination.catalog.file import loader
from coordination.catalog.models import Cache
from coordination.errors import CatalogError, UsageError

Spec = dict[str, object]


def _unwrapped(annotation: object) -> list[object]:
    """The members of a union annotation (``int | None`` -> [int, None]), else itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _fields(model: type[BaseModel]) -> dict[str, object]:
    """The model's fields by the name the catalog writes (``from``, not ``from_``)."""
    return {f.alias or name: f.annotation for name, f in model.model_fields.items()}


def _is_list(annotation: object) -> bool:
    return any(typing.get_origin(a) is list for a in _unwrapped(annotation))


def _wants_text(annotation: object) -> bool:
    """Whether the field takes nothing but text (str, a Literal of strings)."""
    kinds = _unwrapped(annotation)
    return bool(kinds) and all(
        a is str or (typing.get_origin(a) is Literal
                     and all(isinstance(v, str) for v in typing.get_args(a)))
        for a in kinds)


def _submodel(annotation: object) -> type[BaseModel] | None:
    for a in _unwrapped(annotation):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _scalar(text: str, flag: str) -> object:
    """``text`` as the catalog's YAML reads it when it is a plain number, boolean or
    null (``2``, ``0.5``, ``false``); any other text as it is (``10m``, ``10/hour``)."""
    try:
        value = loader.parse(text, flag)
    except CatalogError:
        return text
    return value if isinstance(value, (bool, int, float)) or value is None else text


def parse_spec(text: str, model: type[BaseModel], flag: str, example: str) -> Spec:
    """The mapping ``text`` writes for a field of type ``model``; UsageError (exit 2)
    when it is neither form. An empty mapping is refused too: the empty text removes
    the field, so ``{}`` would be read as the opposite of what it says."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = loader.parse(text, flag)
        except CatalogError as exc:
            raise UsageError(f"bad {flag} {text!r}: {exc.problems[0].message}",
                             hint=f"a YAML flow mapping ({example}) or KEY=VALUE pairs "
                             "joined by commas") from None
        if not isinstance(data, dict):
            raise UsageError(f"bad {flag} {text!r}: not a mapping", hint=f"e.g. {example}")
        spec: Spec = {str(k): v for k, v in data.items()}
    else:
        spec = {}
        for part in text.split(","):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or not key:
                raise UsageError(
                    f"bad {flag} {text!r}: {part.strip()!r} is not KEY=VALUE",
                    hint=f"KEY=VALUE pairs joined by commas, a list's items by '+' "
                    f"(e.g. {example}), or a YAML flow mapping {{key: value}}")
            _set(spec, key.split("."), value.strip(), model, flag)
    if not spec:
        raise UsageError(f"bad {flag} {text!r}: no fields given",
                         hint=f"e.g. {example}; '' removes it")
    return spec


def _set(spec: Spec, path: list[str], value: str, model: type[BaseModel] | None,
         flag: str) -> None:
    """``spec[path...] = value``, typed by the model's field at ``path`` (a name the
    model lacks is kept as text, and the loader names it)."""
    annotation = _fields(model).get(path[0]) if model is not None else None
    if len(path) > 1:
        inner = spec.setdefault(path[0], {})
        if not isinstance(inner, dict):
            raise UsageError(f"bad {flag}: {path[0]} is given both as a value and as "
                             f"{path[0]}.{path[1]}")
        _set(inner, path[1:], value, _submodel(annotation), flag)
        return
    if path[0] in spec:
        raise UsageError(f"bad {flag}: {path[0]} is given twice",
                         hint="a list's items are joined by '+' (repos=api+web)")
    if annotation is not None and _is_list(annotation):
        spec[path[0]] = [v.strip() for v in value.split("+") if v.strip()]
    elif annotation is not None and _wants_text(annotation):
        spec[path[0]] = value
    else:
        spec[path[0]] = _scalar(value, flag)


def spec_or_none(text: str, model: type[BaseModel], flag: str, example: str) -> Spec | None:
    """None for the empty text (the field removed), else :func:`parse_spec`."""
    return parse_spec(text, model, flag, example) if text.strip() else None


def spec_or_off(key: str, text: str | None, off: bool, model: type[BaseModel],
                example: str) -> dict[str, Spec | None]:
    """``--KEY TEXT`` (:func:`spec_or_none`) or ``--no-KEY`` (None: the field removed) as
    ``{key: value}``; empty when neither was given; both: exit 2."""
    if off and text is not None:
        raise UsageError(f"--{key} and --no-{key} both given", hint="give one of them")
    if off:
        return {key: None}
    if text is not None:
        return {key: spec_or_none(text, model, f"--{key}", example)}
    return {}


def cache_value(text: str | None, off: bool, flag: str = "--cache") -> bool | Spec | None:
    """``--cache`` (the text "true"), ``--cache false``, ``--cache SPEC`` or
    ``--no-cache`` (None: the key removed) as a ``cache:`` value; ``text`` None and not
    ``off``: not given (the caller leaves the field alone)."""
    if off and text is not None:
        raise UsageError(f"{flag} and --no-cache both given", hint="give one of them")
    if off:
        return None
    assert text is not None
    word = text.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if not word:
        return None
    return parse_spec(text, Cache, flag, "{env: [PYTHON], inputs: [.env], probes: "
                      "[python --version]}")

