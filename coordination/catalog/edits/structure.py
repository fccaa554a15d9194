"""Edits of the catalog's structure: plans, milestones, dependencies and repos.

The same rules as the issue and todo edits of :mod:`coordination.catalog.manager`
(which mixes :class:`StructureEdits` in): each is one :meth:`CatalogStore.update`, so
one audit entry, decided on the document being edited; names and ids it is given must
exist (else exit 2 with "did you mean"); a delete that would leave something pointing
at nothing is refused with :class:`StillReferenced`, naming every referrer by file and
line, unless ``force``, which takes those references out (or, where the referrer
cannot exist without it, as a todo without its repo, deletes the referrer too) in
the same edit. New ids come from :func:`new_id_in`: a deleted id never comes back.

One mixin per concept, each in its own module: :mod:`plan_edits` (plans and their
milestones), :mod:`dependency_edits`, :mod:`repo_edits`, :mod:`fleet_edits` (`coord
init`'s repos and dependencies at once), on :class:`~coordination.catalog.edits.edit_base.EditBase`.
"""

from __future__ import annotations

from coordination.catalog.edits.dependency_edits import DependencyEdits
from coordination.catalog.edits.fleet_edits import FleetEdits
from coordination.catalog.edits.plan_edits import MilestoneEdits, PlanEdits
from coordination.catalog.edits.repo_edits import RepoEdits


class StructureEdits(PlanEdits, MilestoneEdits, DependencyEdits, RepoEdits, FleetEdits):
    """Plans, milestones, dependencies and repos (mixed into CoordinationManager; each
    mixin's ``@operations`` names its public methods in the audit log)."""
