"""The catalog's root: ``version``, repos, resources, the work under ``coordination:``,
webhooks, approvers and the dependency order, with lookups by name and id."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, PrivateAttr

from coordination.catalog.models.base import CatalogModel
from coordination.catalog.models.dependencies import Dependency, Order
from coordination.catalog.models.issues import Issue
from coordination.catalog.models.notify import NotifyTarget
from coordination.catalog.models.plans import Plan
from coordination.catalog.models.repos import Repo, Resource
from coordination.catalog.models.todos import Todo

M = TypeVar("M", bound=CatalogModel)


class Coordination(CatalogModel):
    issues: list[Issue] = Field(default_factory=list)
    """Cross-repo issues (ISSUE-n)."""
    plans: list[Plan] = Field(default_factory=list)
    """Plans (PLAN-n): the todos a sweep runs, with milestones, waves and an optional change."""
    todos: list[Todo] = Field(default_factory=list)
    """Todos (TODO-n): one task in one repo, with its command and its blockers."""
    dependencies: list[Dependency] = Field(default_factory=list)
    """Inter-repo dependencies (DEP-n): which repo consumes which (`coord dep check`)."""


class Approvers(CatalogModel):
    """Who may approve gates, proven by SSH signatures (``approvers:``).

    ``allowed_signers``: a file in git's ``gpg.ssh.allowedSignersFile`` format
    (principals and their SSH public keys), relative to the catalog's directory. With
    it, a vote counts only with a signature (``ssh-keygen -Y sign -n coord-approval``)
    over the gate's binding that verifies for a principal the gate's ``from:`` names."""

    allowed_signers: str = Field(min_length=1)
    """A file in git's allowed-signers format (principals and SSH public keys), relative to the
    catalog's directory."""


class Catalog(CatalogModel):
    version: Literal[1]
    """The catalog format's version; always 1."""
    repos: list[Repo] = Field(default_factory=list)
    """The repositories coord knows: each a name, its checkout and how its todos run."""
    resources: list[Resource] = Field(default_factory=list)
    """Shared things todos lease besides their repo (a staging database...)."""
    coordination: Coordination = Field(default_factory=Coordination)
    """The work: issues, plans, todos and inter-repo dependencies."""
    notify: list[NotifyTarget] = Field(default_factory=list)
    """Webhooks POSTed when the events they name happen."""
    approvers: Approvers | None = None
    """Who may approve gates, proven by SSH signatures (git's allowed-signers file)."""
    order: Order = Field(default_factory=Order)
    """Which dependency types order `coord run --order deps`, `deps: follow` and
    `repo list --order`, and what a cycle among them does."""
    # Lookups by name or id, each built on first use (a Catalog is treated as immutable).
    _repos: dict[str, Repo] | None = PrivateAttr(None)
    _issues: dict[str, Issue] | None = PrivateAttr(None)
    _plans: dict[str, Plan] | None = PrivateAttr(None)
    _todos: dict[str, Todo] | None = PrivateAttr(None)
    _deps: dict[str, Dependency] | None = PrivateAttr(None)

    def repo(self, name: str) -> Repo | None:
        return self._lookup("_repos", self.repos, "name").get(name)

    def issue(self, id_: str) -> Issue | None:
        return self._lookup("_issues", self.coordination.issues).get(id_)

    def plan(self, id_: str) -> Plan | None:
        return self._lookup("_plans", self.coordination.plans).get(id_)

    def todo(self, id_: str) -> Todo | None:
        return self._lookup("_todos", self.coordination.todos).get(id_)

    def dependency(self, id_: str) -> Dependency | None:
        return self._lookup("_deps", self.coordination.dependencies).get(id_)

    def _lookup(self, attr: str, items: list[M], key: str = "id") -> dict[str, M]:
        """The lookup held in the private attribute ``attr``: ``items`` by ``key``,
        built on first use (one read: a private attribute goes through __getattr__)."""
        found: dict[str, M] | None = getattr(self, attr)
        if found is None:
            found = {getattr(x, key): x for x in items}
            setattr(self, attr, found)
        return found

    def plan_todos(self, plan_id: str) -> list[Todo]:
        """The plan's todos: those naming it in ``plan`` or listed in its milestones.

        Catalog order, each once.
        """
        plan = self.plan(plan_id)
        listed: set[str] = set()
        if plan is not None:
            for ms in plan.milestones:
                listed.update(ms.todos)
        return [t for t in self.coordination.todos if t.plan == plan_id or t.id in listed]
