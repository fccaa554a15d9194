"""The catalog's JSON Schema as the loader reads a catalog (`coord schema`).

Pydantic's schema of the models says what a value *is* once loaded; the loader
(pydantic in lax mode) also takes what it turns into one: a number written as text
(``timeout: "600"``, ``concurrency: "2"``), and ``true``/``false`` written as a word
or as 0/1 (``verify: yes``, which a YAML 1.2 editor reads as text where the loader's
YAML 1.1 reads a boolean). :class:`CatalogSchema` says so, so that an editor does not
flag such a catalog. The patterns below are the forms people write of what pydantic's
lax mode accepts (not its every quirk: ``"1_000"`` is the loader's alone), never more;
tests/unit/catalog/test_schema_patterns.py holds them to pydantic's own answers.

A field's description is the docstring under it in the models' source. Pydantic's
``use_attribute_docstrings`` would read that source while every model is built, at every
import of the models (a quarter of importing them); :func:`describe_fields` reads it
only when a description is wanted: for the schema (:class:`CatalogSchema` calls it
first) and the generated reference (docs/hooks/gen_ref.py).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from coordination.catalog.governance import GovernanceModel
from coordination.catalog.models import Catalog
from coordination.catalog.models.base import CatalogModel
from coordination.catalog.rules.patterns import END, any_case

_WS = r"[ \t\n]*"
#: A whole number as text: ``"2"``, ``" +2 "``, ``"2.0"``.
INTEGER_TEXT_PATTERN = rf"^{_WS}[+-]?[0-9]+(?:\.0+)?{_WS}{END}"
#: A number as text: ``"600"``, ``"1.5"``, ``".5"``, ``"1."``, ``"6e2"`` (not inf or nan:
#: the catalog's numbers are finite).
NUMBER_TEXT_PATTERN = (rf"^{_WS}[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                       rf"{_WS}{END}")
#: The words pydantic reads as a boolean, in any case.
TRUE_WORDS = ("true", "yes", "on", "t", "y", "1")
FALSE_WORDS = ("false", "no", "off", "f", "n", "0")


BOOLEAN_TEXT_PATTERN = f"^(?:{'|'.join(any_case(w) for w in TRUE_WORDS + FALSE_WORDS)}){END}"


def attribute_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in ``cls``'s own body (as pydantic's
    ``use_attribute_docstrings`` reads them: a string right after an annotated name)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs: dict[str, str] = {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    for before, stmt in zip(body, body[1:]):
        if (isinstance(before, ast.AnnAssign) and isinstance(before.target, ast.Name)
                and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)):
            docs[before.target.id] = inspect.cleandoc(stmt.value.value)
    return docs


def _models() -> list[type[BaseModel]]:
    """Every model of the catalog, each after the models its fields hold (so a rebuild
    in this order builds a model on its fields' rebuilt ones)."""
    ordered: list[type[BaseModel]] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in ordered:
                return
            for f in tp.model_fields.values():
                visit(f.annotation)
            ordered.append(tp)
            return
        for arg in getattr(tp, "__args__", ()):
            visit(arg)

    visit(Catalog)
    pending = [CatalogModel, GovernanceModel]
    while pending:  # and those no field of the catalog holds
        base = pending.pop()
        pending.extend(base.__subclasses__())
        visit(base)
    return ordered


@functools.cache
def describe_fields() -> None:
    """Give each catalog model's fields their docstrings as descriptions (a field given
    a ``description=`` keeps it; an inherited field keeps its class's), then rebuild the
    models so their JSON Schema says them. Once per process."""
    models = _models()
    for model in models:
        own = {c: attribute_docstrings(c) for c in model.__mro__
               if issubclass(c, BaseModel) and c not in (BaseModel, CatalogModel, GovernanceModel)}
        for name, field in model.model_fields.items():
            if field.description is not None:
                continue
            # the nearest class that annotates the field: its docstring, or none
            where = next((c for c in own if name in c.__dict__.get("__annotations__", {})), None)
            if where is not None and name in own[where]:
                field.description = own[where][name]
    for model in models:
        model.model_rebuild(force=True)


class CatalogSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with a number or a boolean also accepted as the text
    (and a boolean as the 0 or 1) the loader takes for one. A number's bounds apply to
    a number; one written as text is checked by the loader alone. The fields'
    descriptions are read in first (:func:`describe_fields`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before pydantic hands this generator the model's core schema
        describe_fields()
        super().__init__(*args, **kwargs)

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        # A pattern of the models ends with $, which the loader (pydantic's Rust regex)
        # and ECMAScript read as the end of the text, and Python as before a final
        # newline too: END says the end of the text to both.
        json_schema = super().str_schema(schema)
        pattern = json_schema.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
            json_schema["pattern"] = pattern[:-1] + END
        return json_schema

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return {"anyOf": [super().int_schema(schema),
                          {"type": "string", "pattern": INTEGER_TEXT_PATTERN}]}

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        return {"anyOf": [super().float_schema(schema),
                          {"type": "string", "pattern": NUMBER_TEXT_PATTERN}]}

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        return {"anyOf": [super().bool_schema(schema), {"enum": [0, 1]},
                          {"type": "string", "pattern": BOOLEAN_TEXT_PATTERN}]}
