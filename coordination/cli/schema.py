"""`coord schema`: the catalog's JSON Schema, generated from its pydantic models.

Editors read it through the ``# yaml-language-server: $schema=...`` line `coord init`
writes at the top of a new catalog (pointing at ``.coord/schema.json`` beside it).
It checks what one object can check alone (keys, types, enums, id formats); what
needs the whole catalog (unique ids, references) is `coord plan validate`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from coordination.catalog.models import Catalog
from coordination.catalog.schema import CatalogSchema
from coordination.errors import UsageError

#: Where `coord init` writes the schema, relative to the catalog's directory.
SCHEMA_PATH = ".coord/schema.json"
HEADER = f"# yaml-language-server: $schema={SCHEMA_PATH}\n"


def catalog_schema() -> dict[str, object]:
    """``Catalog.model_json_schema()`` as the loader reads a catalog (numbers and
    booleans written as text too: :class:`CatalogSchema`), a standalone 2020-12 document."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Catalog.model_json_schema(mode="validation", schema_generator=CatalogSchema),
    }
    schema["title"] = "coord catalog (ecosystem.yaml)"
    schema["description"] = ("The catalog of repos, issues, plans, todos and dependencies "
                             "coord coordinates (ecosystem.yaml), version 1.")
    return schema


def schema_text() -> str:
    return json.dumps(catalog_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(catalog_dir: Path) -> Path:
    """Write the schema to ``.coord/schema.json`` under ``catalog_dir`` (replacing an
    older one); its path."""
    path = catalog_dir / SCHEMA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    text = schema_text()
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write it to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the catalog's JSON Schema (for editors and CI validators).

    \b
    Examples:
      coord schema > .coord/schema.json
      coord schema -o schema.json
    """
    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write it: {exc.strerror or exc}",
                         hint="name a file in a directory that exists and you may write "
                         "to, or leave out -o to print the schema") from None
