"""A repo at a glance (`coord repo status`) and what keeps it from moving on (`coord
repo blocking`): unsatisfied dependencies, issues waiting on open issues, todos
waiting on open blockers: the ``reports`` part of
:class:`~coordination.catalog.manager.CoordinationManager`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from coordination.catalog.models import Catalog, DependencyStatus, IssueStatus, TodoStatus
from coordination.jsonable import JSONObject

if TYPE_CHECKING:
    from coordination.catalog.reads.queries import CatalogReads

ISSUE_OPEN = {IssueStatus.open, IssueStatus.in_progress}
TODO_DONE = {TodoStatus.completed, TodoStatus.skipped}


class RepoBlocker(TypedDict):
    """One thing a repo waits on (``coord repo blocking``)."""

    kind: str  # "dependency", "issue" or "todo"
    id: str
    waits_on: list[str]
    reason: str


class BlockingDocument(TypedDict):
    """``coord repo blocking NAME --json``."""

    repo: str
    blocked: bool
    blockers: list[RepoBlocker]


class OpenIssue(TypedDict):
    id: str
    title: str
    status: str
    priority: str


class Consumed(TypedDict):
    id: str
    provider: str
    type: str
    status: str


class Provided(TypedDict):
    id: str
    consumer: str
    type: str
    status: str


class RepoStatus(TypedDict):
    """``coord repo status NAME --json``."""

    repo: JSONObject
    checkout: str
    checkout_exists: bool
    open_issues: list[OpenIssue]
    todos: dict[str, list[str]]
    consumes: list[Consumed]
    provides: list[Provided]
    blocked_by: list[RepoBlocker]


class RepoReports:
    """`coord repo status` and `coord repo blocking` (``manager.reports``)."""

    def __init__(self, reads: CatalogReads) -> None:
        self.reads = reads

    def repo_status(self, name: str) -> RepoStatus:
        """One repo at a glance: open issues, todos by status, dependencies, blockers."""
        cat = self.reads.catalog()
        repo = self.reads.repo(cat, name)
        assert repo is not None
        path = self.reads.checkout(repo)
        todos: dict[str, list[str]] = {}
        for t in cat.coordination.todos:
            if t.repo == name:
                todos.setdefault(t.status.value, []).append(t.id)
        deps = cat.coordination.dependencies
        return {
            "repo": repo.model_dump(mode="json"),
            "checkout": str(path),
            "checkout_exists": path.is_dir(),
            "open_issues": [
                {"id": i.id, "title": i.title, "status": i.status.value,
                 "priority": i.priority.value}
                for i in cat.coordination.issues if name in i.repos and i.status in ISSUE_OPEN
            ],
            "todos": todos,
            "consumes": [
                {"id": d.id, "provider": d.provider, "type": d.type.value, "status": d.status.value}
                for d in deps if d.consumer == name
            ],
            "provides": [
                {"id": d.id, "consumer": d.consumer, "type": d.type.value, "status": d.status.value}
                for d in deps if d.provider == name
            ],
            "blocked_by": self._blocking(cat, name),
        }

    def blocking(self, name: str) -> list[RepoBlocker]:
        """What keeps this repo from moving on, each with the reason."""
        cat = self.reads.catalog()
        self.reads.repo(cat, name)
        return self._blocking(cat, name)

    def blocking_document(self, name: str) -> BlockingDocument:
        """``coord repo blocking NAME --json``: ``{"repo", "blocked": bool, "blockers"}``."""
        blockers = self.blocking(name)
        return {"repo": name, "blocked": bool(blockers), "blockers": blockers}

    def _blocking(self, cat: Catalog, name: str) -> list[RepoBlocker]:
        out: list[RepoBlocker] = []
        for d in cat.coordination.dependencies:
            if d.consumer == name and d.status != DependencyStatus.satisfied:
                out.append({
                    "kind": "dependency", "id": d.id, "waits_on": [d.provider],
                    "reason": f"depends on {d.provider} ({d.type.value}), status {d.status.value}"
                              + ("" if d.validation else " (no validation command)"),
                })
        for i in cat.coordination.issues:
            if name not in i.repos or i.status not in ISSUE_OPEN:
                continue
            open_deps = [o for x in i.dependencies if (o := cat.issue(x)) and o.status in ISSUE_OPEN]
            if open_deps:
                out.append({
                    "kind": "issue", "id": i.id, "waits_on": [o.id for o in open_deps],
                    "reason": f"{i.id} ({i.status.value}) waits on "
                              + ", ".join(f"{o.id} ({o.status.value})" for o in open_deps),
                })
        for t in cat.coordination.todos:
            if t.repo != name or t.status in TODO_DONE:
                continue
            waiting = []
            for b in t.blocked_by:
                iss, todo = cat.issue(b), cat.todo(b)
                if iss is not None and iss.status in ISSUE_OPEN:
                    waiting.append(f"{b} ({iss.status.value})")
                elif todo is not None and todo.status != TodoStatus.completed:
                    waiting.append(f"{b} ({todo.status.value})")
            if waiting:
                out.append({
                    "kind": "todo", "id": t.id, "waits_on": [w.split(" ")[0] for w in waiting],
                    "reason": f"{t.id} ({t.status.value}) waits on " + ", ".join(waiting),
                })
        return out
