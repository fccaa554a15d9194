"""The reads of :class:`~coordination.catalog.manager.CoordinationManager` (its
``reads`` part): the catalog's models, issues, todos, plans and dependencies listed and
found, with lookups that refuse an unknown name or id with "did you mean". The edit
parts are given the same object for the read after an edit and their lookups.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TypeVar

from coordination.catalog.reads import reports
from coordination.catalog.rules.checks import unknown
from coordination.catalog.edits.inputs import choice
from coordination.catalog.models import (
    Catalog,
    Dependency,
    DependencyType,
    Issue,
    IssueStatus,
    Plan,
    PlanStatus,
    Priority,
    Repo,
    Todo,
    TodoStatus,
)
from coordination.catalog.file.store import CatalogStore
from coordination.catalog.selection.templates import expand, selected_repos, split_instance
from coordination.errors import UsageError

M = TypeVar("M")


class CatalogReads:
    """The reads of one ``ecosystem.yaml``, over its store."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    # -- reads ------------------------------------------------------------------
    def catalog(self) -> Catalog:
        return self.store.load()

    def repo(self, cat: Catalog, name: str | None) -> Repo | None:
        """The repo ``name`` of ``cat`` (None for None); an unknown name refused."""
        if name is None:
            return None
        repo = cat.repo(name)
        if repo is None:
            raise unknown(name, [r.name for r in cat.repos], "repo")
        return repo

    def checkout(self, repo: Repo) -> Path:
        """A repo's checkout: ``path`` relative to the catalog's directory, default its name."""
        return repo.checkout(self.store.base_dir)

    def list_repos(self) -> list[Repo]:
        return list(self.catalog().repos)

    def get_repo(self, name: str) -> Repo:
        repo = self.repo(self.catalog(), name)
        assert repo is not None
        return repo

    def list_issues(
        self, *, status: str | None = None, priority: str | None = None,
        repo: str | None = None, assignee: str | None = None,
    ) -> list[Issue]:
        choice(status, IssueStatus, "issue status")
        choice(priority, Priority, "priority")
        cat = self.catalog()
        self.repo(cat, repo)
        return [
            i for i in cat.coordination.issues
            if (status is None or i.status.value == status)
            and (priority is None or i.priority.value == priority)
            and (repo is None or repo in i.repos)
            and (assignee is None or i.assignee == assignee)
        ]

    def get_issue(self, id_: str) -> Issue:
        cat = self.catalog()
        return must_find(cat.issue(id_), cat, "issue", id_)

    def list_todos(
        self, *, status: str | None = None, repo: str | None = None,
        assignee: str | None = None, plan: str | None = None,
    ) -> list[Todo]:
        choice(status, TodoStatus, "todo status")
        cat = self.catalog()
        self.repo(cat, repo)
        if repo is not None and any(t.for_each is not None for t in cat.coordination.todos):
            # a repo's instances of templates too (one that selects nothing now has none:
            # a list never fails for it, `plan status` says it)
            cat = expand(cat, self.store.base_dir, problems={})
        todos = cat.coordination.todos
        if plan is not None:
            must_find(cat.plan(plan), cat, "plan", plan)
            todos = cat.plan_todos(plan)
        return [
            t for t in todos
            if (status is None or t.status.value == status)
            and (repo is None or t.repo == repo)
            and (assignee is None or t.assignee == assignee)
        ]

    def get_todo(self, id_: str) -> Todo:
        """A todo, or a template's instance (``TODO-010[api]``) as a sweep runs it.
        (:meth:`list_todos` with a repo lists that repo's instances.)"""
        cat = self.catalog()
        if "[" in id_:
            cat = expand(cat, self.store.path.resolve().parent)
        return must_find(cat.todo(id_), cat, "todo", id_)

    def list_plans(self, *, status: str | None = None, repo: str | None = None) -> list[Plan]:
        choice(status, PlanStatus, "plan status")
        cat = self.catalog()
        self.repo(cat, repo)

        def touches(p: Plan) -> bool:
            return repo in p.repos or any(t.repo == repo for t in cat.plan_todos(p.id))

        return [
            p for p in cat.coordination.plans
            if (status is None or p.status.value == status) and (repo is None or touches(p))
        ]

    def get_plan(self, id_: str) -> Plan:
        cat = self.catalog()
        return must_find(cat.plan(id_), cat, "plan", id_)

    def plan_todos(self, id_: str) -> list[Todo]:
        cat = self.catalog()
        must_find(cat.plan(id_), cat, "plan", id_)
        return cat.plan_todos(id_)

    def plan_status(self, id_: str, *, today: dt.date | None = None) -> reports.PlanStatus:
        """The ``coord plan status`` document: todos by status, milestones
        done/open/overdue as of ``today``, criteria, ``complete`` (see
        :func:`coordination.catalog.reads.reports.plan_status`)."""
        from coordination.catalog.runs.criteria import read_results  # lazy: its runner, status only

        return reports.plan_status(self.catalog(), id_, today=today,
                                   results=read_results(self.store.path).get(id_, []))

    def list_dependencies(
        self, *, consumer: str | None = None, provider: str | None = None, type: str | None = None,
    ) -> list[Dependency]:
        choice(type, DependencyType, "dependency type")
        cat = self.catalog()
        self.repo(cat, consumer)
        self.repo(cat, provider)
        return [
            d for d in cat.coordination.dependencies
            if (consumer is None or d.consumer == consumer)
            and (provider is None or d.provider == provider)
            and (type is None or d.type.value == type)
        ]

    def template_of(self, cat: Catalog, id_: str) -> tuple[Todo, str, list[str]]:
        """The template an instance id ``TODO-010[api]`` names, the instance's repo and
        the repos the template selects; refused (exit 2) when it is no template or
        does not select that repo."""
        tid, repo = split_instance(id_)
        assert repo is not None
        template = cat.todo(tid)
        if template is None:
            raise unknown(id_, [t.id for t in cat.coordination.todos], "todo")
        if template.for_each is None:
            raise UsageError(f"{id_}: {tid} is not a template (no for_each:), so it has no "
                             "instances", hint=f"write {tid}")
        selected = selected_repos(cat, template, self.store.base_dir)
        if repo not in selected:
            raise UsageError(f"{id_}: {tid}'s for_each {template.for_each!r} does not select "
                             f"{repo!r}", hint=f"`coord todo show {tid}` lists its instances")
        return template, repo, selected


def must_find(found: M | None, cat: Catalog, kind: str, id_: str) -> M:
    """``found``, else the NotFoundError naming the ids of ``kind`` closest to ``id_``."""
    if found is None:
        known = {
            "issue": [x.id for x in cat.coordination.issues],
            "todo": [x.id for x in cat.coordination.todos],
            "plan": [x.id for x in cat.coordination.plans],
            "dependency": [x.id for x in cat.coordination.dependencies],
        }[kind]
        raise unknown(id_, known, kind)
    return found
