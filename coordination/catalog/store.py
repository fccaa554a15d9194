"""ecosystem.yaml on disk: validated loads and safe, comment-keeping edits.

MINIMAL FIRST VERSION: the API below is fixed; the implementation is being
hardened (locking, optimistic check, safe loading, line numbers, cache).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from coordination.catalog.checks import check_catalog, loc_to_field
from coordination.catalog.models import Catalog
from coordination.errors import CatalogSchemaError, CatalogSyntaxError, Problem

T = TypeVar("T")


class CatalogStore:
    """One catalog file.

    ``load()`` returns a validated :class:`Catalog`. ``update(fn)`` calls
    ``fn(doc)`` with the round-trip document (ruamel CommentedMap: edit it in
    place, comments survive), validates the result and writes it atomically;
    it returns what ``fn`` returned. Invalid results raise and write nothing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def base_dir(self) -> Path:
        """Directory that relative repo paths are resolved against."""
        return self.path.resolve().parent

    # -- reading --------------------------------------------------------------
    def read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise CatalogSyntaxError(
                Problem("no such file", file=str(self.path)),
                hint="create it, pass --file PATH, or set COORD_ECOSYSTEM",
            ) from None

    def load(self) -> Catalog:
        return self.validate_data(self.parse(self.read_bytes()))

    def parse(self, data: bytes) -> Any:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogSyntaxError(
                Problem(f"not UTF-8 text (byte {exc.start})", file=str(self.path))
            ) from None
        try:
            return yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506 - safe loader
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            raise CatalogSyntaxError(
                Problem(str(exc).splitlines()[0], file=str(self.path),
                        line=None if line is None else line + 1)
            ) from None

    def validate_data(self, data: Any) -> Catalog:
        try:
            cat = Catalog.model_validate(data)
        except ValidationError as exc:
            problems = [
                Problem(e["msg"], file=str(self.path), field=loc_to_field(tuple(e["loc"])),
                        loc=tuple(e["loc"]))
                for e in exc.errors()
            ]
            raise CatalogSchemaError(problems) from None
        problems = check_catalog(cat)
        if problems:
            raise CatalogSchemaError(
                [Problem(p.message, file=str(self.path), field=loc_to_field(p.loc), loc=p.loc)
                 for p in problems]
            )
        return cat

    # -- writing --------------------------------------------------------------
    def update(self, fn: Callable[[Any], T]) -> T:
        from ruamel.yaml import YAML

        rt = YAML(typ="rt")
        rt.preserve_quotes = True
        doc = rt.load(self.read_bytes().decode("utf-8"))
        result = fn(doc)
        buf = io.StringIO()
        rt.dump(doc, buf)
        new = buf.getvalue().encode("utf-8")
        self.validate_data(self.parse(new))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise
        return result
