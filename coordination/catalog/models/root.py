"""The catalog's root: ``version``, repos, resources, the work under ``coordination:``,
webhooks, approvers and the dependency order, with lookups by name and id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr

from coordination.catalog.model_methods import CatalogMethods
from coordination.catalog.models.base import CatalogModel
from coordination.catalog.models.dependencies import Dependency, Order
from coordination.catalog.models.issues import Issue
from coordination.catalog.models.notify import NotifyTarget
from coordination.catalog.models.plans import Plan
from coordination.catalog.models.repos import EnvName, Repo, Resource
from coordination.catalog.models.todos import Todo

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


class Catalog(CatalogModel, CatalogMethods[Repo, Issue, Plan, Todo, Dependency]):
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
    mask_env: list[EnvName] = Field(default_factory=list)
    """Environment variables whose values are masked as *** in everything every todo's run
    leaves (logs, output tails, results, events, webhooks, pages); a repo and a todo may
    name more. Values shorter than 4 characters are not masked."""
    approvers: Approvers | None = None
    """Who may approve gates, proven by SSH signatures (git's allowed-signers file)."""
    order: Order = Field(default_factory=Order)
    """Which dependency types order `coord run --order deps`, `deps: follow` and
    `repo list --order`, and what a cycle among them does."""
    # Lookups by name or id, each built on first use (a Catalog is treated as immutable):
    # CatalogMethods' repo(), issue(), plan(), todo(), dependency() and plan_todos().
    _repos: dict[str, Repo] | None = PrivateAttr(None)
    _issues: dict[str, Issue] | None = PrivateAttr(None)
    _plans: dict[str, Plan] | None = PrivateAttr(None)
    _todos: dict[str, Todo] | None = PrivateAttr(None)
    _deps: dict[str, Dependency] | None = PrivateAttr(None)
