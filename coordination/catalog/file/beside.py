"""The files coord keeps beside a catalog, named in one place.

Each lives beside the *real* catalog file (symlinks resolved, so a catalog reached
through a link shares them with the file it names, and moves with it), hidden: either
``.<catalog name>.coord.<what>`` (one per catalog: several catalogs may share a
directory) or under the directory's ``.coord`` (one per directory). Who reads or
writes one asks :class:`Beside` where it is; no other module spells these names, so a
new file beside the catalog is added here, where `.gitignore` advice, `coord init` and
the audit's decisions can see them all (tests/unit/catalog/test_beside.py holds the
rest of the package to it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The part of every per-catalog file's name after ``.<catalog name>``.
MARK = ".coord."
#: Per-directory files, under the catalog's directory.
ANCHORS = ".coord.anchors"
SCHEMA = ".coord/schema.json"
FLEET_ROOTS = ".coord/fleet.json"


@dataclass(frozen=True)
class Beside:
    """The files beside one catalog: ``Beside.of(catalog).audit_log`` and so on."""

    catalog: Path  # the real catalog file, symlinks resolved

    @classmethod
    def of(cls, catalog: str | os.PathLike[str]) -> Beside:
        return cls(Path(os.path.realpath(catalog)))

    @property
    def directory(self) -> Path:
        return self.catalog.parent

    def _own(self, what: str) -> Path:
        return self.directory / f".{self.catalog.name}{MARK}{what}"

    @property
    def lock(self) -> Path:
        """The lock every edit holds (:class:`~coordination.catalog.file.store.CatalogStore`)."""
        return self._own("lock")

    @property
    def audit_log(self) -> Path:
        """One hash-chained line per audited edit (:mod:`coordination.catalog.audit.log`)."""
        return self._own("audit.jsonl")

    @property
    def audit_snapshot(self) -> Path:
        """The catalog as the last audited write left it."""
        return self._own("audit.last")

    @property
    def sweep_markers(self) -> Path:
        """A directory: one marker per sweep started from the catalog
        (:mod:`coordination.catalog.reads.live`)."""
        return self._own("sweeps")

    @property
    def criteria_results(self) -> Path:
        """A plan's checked criteria's last results (:mod:`coordination.catalog.runs.criteria`)."""
        return self._own("criteria.json")

    @property
    def change_mirrors(self) -> Path:
        """A directory: each plan's change state (:mod:`coordination.change.mirror`)."""
        return self._own("changes")

    @property
    def redis(self) -> Path:
        """A directory: the embedded server (:mod:`coordination.connection.embedded_server`)."""
        return self._own("redis")

    @property
    def history_0_2(self) -> Path:
        """0.2's history file, carried over once (:mod:`coordination.runtime.migrations`)."""
        return self._own("history.sqlite")

    @property
    def anchors(self) -> Path:
        """A directory: changes' anchors by namespace (:mod:`coordination.change.anchor`)."""
        return self.directory / ANCHORS

    @property
    def schema(self) -> Path:
        """`coord schema`'s JSON Schema, which a new catalog's first line names."""
        return self.directory / SCHEMA

    @property
    def fleet_roots(self) -> Path:
        """The directories `coord init` scanned (:mod:`coordination.fleet.roots`)."""
        return self.directory / FLEET_ROOTS
