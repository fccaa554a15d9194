"""`coord schema`: the catalog's JSON Schema, generated from its pydantic models.

Editors read it through the ``# yaml-language-server: $schema=...`` line `coord init`
writes at the top of a new catalog (pointing at ``.coord/schema.json`` beside it).
It checks what one object can check alone (keys, types, enums, id formats); what
needs the whole catalog (unique ids, references) is `coord plan validate`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import click

from coordination.catalog.file import cache
from coordination.catalog.file.beside import SCHEMA, BesideDirectory
from coordination.errors import UsageError

#: Where `coord init` writes the schema, relative to the catalog's directory.
HEADER = f"# yaml-language-server: $schema={SCHEMA}\n"


def catalog_schema() -> dict[str, object]:
    """``Catalog.model_json_schema()`` as the loader reads a catalog (numbers and
    booleans written as text too: :class:`CatalogSchema`), a standalone 2020-12 document."""
    from coordination.catalog.models import Catalog  # lazy: a schema the cache does not hold
    from coordination.catalog.rules.schema import CatalogSchema  # lazy: as above

    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Catalog.model_json_schema(mode="validation", schema_generator=CatalogSchema),
    }
    schema["title"] = "coord catalog (ecosystem.yaml)"
    schema["description"] = ("The catalog of repos, issues, plans, todos and dependencies "
                             "coord coordinates (ecosystem.yaml), version 1.")
    return schema


def schema_text() -> str:
    """The schema as written: from the cache when the code that makes it is the same
    (generating it from the models is most of what `coord init` spends on a small
    fleet), else generated and cached."""
    where = _cached_at()
    if where is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return where.read_text(encoding="utf-8")
    text = json.dumps(catalog_schema(), indent=2, sort_keys=False) + "\n"
    if where is not None:
        with contextlib.suppress(OSError):
            _keep(where, text)
    return text


def _cached_at() -> Path | None:
    """Where the schema of this code is cached: named by the catalog cache's code tag
    (pydantic's and the catalog's files) and this module's own; None without a cache."""
    base = cache.default_cache_dir()
    if base is None:
        return None
    st = os.stat(__file__)
    tag = f"{cache.code_tag()}|{st.st_size}:{st.st_mtime_ns}"
    return base / f"schema-{hashlib.sha256(tag.encode()).hexdigest()[:32]}.json"


def _keep(where: Path, text: str) -> None:
    """Write ``where`` whole (a temporary file renamed), the older schemas removed."""
    where.parent.mkdir(parents=True, exist_ok=True)
    for old in where.parent.glob("schema-*.json"):
        if old != where:
            old.unlink(missing_ok=True)
    tmp = where.with_name(f".{where.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, where)


def write_schema(catalog_dir: Path) -> Path:
    """Write the schema to ``.coord/schema.json`` under ``catalog_dir`` (replacing an
    older one); its path."""
    handle = BesideDirectory(catalog_dir).schema
    text = schema_text()
    try:
        if handle.read_str() == text:
            return handle.path
    except (OSError, ValueError):
        pass
    handle.write_str(text)
    return handle.path


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
