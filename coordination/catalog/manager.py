"""CoordinationManager: the library API over one catalog file.

The CLI is a thin layer over this class; tests and other programs call it
directly. Reads go through :meth:`CatalogStore.load` (validated models).
Edits go through :meth:`CatalogStore.update`, mutating the round-trip
document in place so the user's comments and key order survive; the store
validates the result and writes nothing when it is invalid. Checks that can
give a better message than the schema (unknown repo, unknown id, bad enum
value) are made inside the edit function, against the document being edited,
so they cannot race with a concurrent writer.

The class is one mixin per concept over
:class:`~coordination.catalog.reads.queries.CatalogQueries` (the store and the reads):
:mod:`.issue_edits`, :mod:`.todo_edits`, :mod:`.plan_reset`, :mod:`.dependency_checks`,
:mod:`.notify_edits`, :mod:`.repo_status`, and :mod:`.structure` for plans,
milestones, dependencies and repos.
"""

from __future__ import annotations

from pathlib import Path

from coordination.catalog.audit.log import operations
from coordination.catalog.runs.dependency_checks import DependencyChecks
from coordination.catalog.edits.issue_edits import IssueEdits
from coordination.catalog.edits.notify_edits import NotifyEdits
from coordination.catalog.edits.plan_reset import PlanResets
from coordination.catalog.reads.repo_status import RepoReports
from coordination.catalog.edits.structure import StructureEdits
from coordination.catalog.edits.todo_edits import TodoEdits


@operations  # each edit's audit entry is named after the method called (audit.py)
class CoordinationManager(IssueEdits, TodoEdits, PlanResets, DependencyChecks, NotifyEdits,
                          RepoReports, StructureEdits):
    """Issues, todos, plans, dependencies and repos of one ``ecosystem.yaml``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.milestones = ([], [])
