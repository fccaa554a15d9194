"""CoordinationManager: the library API over one catalog file.

The CLI is a thin layer over this class; tests and other programs call it
directly. Reads go through :meth:`CatalogStore.load` (validated models).
Edits go through :meth:`CatalogStore.update`, mutating the round-trip
document in place so the user's comments and key order survive; the store
validates the result and writes nothing when it is invalid. Checks that can
give a better message than the schema (unknown repo, unknown id, bad enum
value) are made inside the edit function, against the document being edited,
so they cannot race with a concurrent writer.

The manager holds one part per concept, each given the store (and the reads, where it
looks things up: :mod:`.edits.edit_base`), none built on another: ``reads``
(:mod:`.reads.queries`), ``reports`` (:mod:`.reads.repo_status`), ``issues``,
``todos``, ``plans``, ``milestones``, ``dependencies``, ``repos``, ``fleet`` and
``notify`` (:mod:`.edits`). Each edit returns what it made; each names its audit entry
with :func:`~coordination.catalog.audit.log.audited` (``manager.todos.complete``
writes ``complete_todo``).
"""

from __future__ import annotations

from pathlib import Path

from coordination.catalog.edits.dependency_edits import Dependencies
from coordination.catalog.edits.fleet_edits import FleetEdits
from coordination.catalog.edits.issue_edits import Issues
from coordination.catalog.edits.notify_edits import Notify
from coordination.catalog.edits.plan_edits import Milestones, Plans
from coordination.catalog.edits.repo_edits import Repos
from coordination.catalog.edits.todo_edits import Todos
from coordination.catalog.file.store import CatalogStore
from coordination.catalog.reads.queries import CatalogReads
from coordination.catalog.reads.repo_status import RepoReports


class CoordinationManager:
    """Issues, todos, plans, dependencies and repos of one ``ecosystem.yaml``."""

    def __init__(self, path: str | Path) -> None:
        self.store = CatalogStore(path)
        self.reads = CatalogReads(self.store)
        self.reports = RepoReports(self.reads)
        self.issues = Issues(self.store, self.reads)
        self.todos = Todos(self.store, self.reads)
        self.plans = Plans(self.store, self.reads)
        self.milestones = Milestones(self.store)
        self.dependencies = Dependencies(self.store, self.reads)
        self.repos = Repos(self.store)
        self.fleet = FleetEdits(self.store)
        self.notify = Notify(self.store, self.reads)
