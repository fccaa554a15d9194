"""The catalog's JSON Schema as the loader reads a catalog (`coord schema`).

Pydantic's schema of the models says what a value *is* once loaded; the loader
(pydantic in lax mode) also takes what it turns into one: a number written as text
(``timeout: "600"``, ``concurrency: "2"``), and ``true``/``false`` written as a word
or as 0/1 (``verify: yes``, which a YAML 1.2 editor reads as text where the loader's
YAML 1.1 reads a boolean). :class:`CatalogSchema` says so, so that an editor does not
flag such a catalog. The patterns below are the forms people write of what pydantic's
lax mode accepts (not its every quirk: ``"1_000"`` is the loader's alone), never more;
tests/unit/catalog/test_schema_patterns.py holds them to pydantic's own answers.
"""

from __future__ import annotations

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from coordination.catalog.patterns import END, any_case

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


class CatalogSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with a number or a boolean also accepted as the text
    (and a boolean as the 0 or 1) the loader takes for one. A number's bounds apply to
    a number; one written as text is checked by the loader alone."""

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
