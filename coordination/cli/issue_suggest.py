"""`coord issue suggest` and `issue create --assignee auto`: who should take an issue.
The ranking is :mod:`coordination.stats.suggest`'s (pure); this reads what it ranks: the
catalog's todos and issues with an assignee, and who the audit log says completed a
todo or closed an issue (`todo complete`, `issue close`: their ``who``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.stats.suggest import Suggestion, Work

#: Audit operations that say their ``who`` completed (or closed) the items they name.
_DONE_BY = {"complete_todo": "todo", "close_issue": "issue"}
_DONE_ISSUE = ("resolved", "closed")


def people_work(catalog: Catalog, file: Path) -> list[Work]:
    """Each person's work: their assigned todos and issues (done or open), and the todos
    and issues the audit log says they completed or closed (done, in the item's repos
    with its words, while the catalog still holds it)."""
    from coordination.catalog.audit import log as audit  # lazy: suggest only
    from coordination.stats.suggest import Work  # lazy: FTS5 stems, suggest only

    todos = {t.id: t for t in catalog.coordination.todos}
    issues = {i.id: i for i in catalog.coordination.issues}

    def todo_work(person: str, tid: str, done: bool | None = None) -> Work:
        t = todos[tid]
        return Work(person, tid, (t.repo,) if t.repo else (), f"{t.task} {t.description}",
                    t.status.value == "completed" if done is None else done)

    def issue_work(person: str, iid: str, done: bool | None = None) -> Work:
        i = issues[iid]
        return Work(person, iid, tuple(i.repos), f"{i.title} {i.description}",
                    i.status.value in _DONE_ISSUE if done is None else done)

    out = [todo_work(t.assignee, t.id) for t in todos.values() if t.assignee]
    out += [issue_work(i.assignee, i.id) for i in issues.values() if i.assignee]
    path = audit.log_path(file)
    if path.exists():
        for e in audit.read(path):
            kind = _DONE_BY.get(str(e.get("op")))
            who = str(e.get("who") or "")
            if kind is None or not who:
                continue
            for iid in e.get("ids") or ():
                if kind == "todo" and iid in todos:
                    out.append(todo_work(who, iid, True))
                elif kind == "issue" and iid in issues:
                    out.append(issue_work(who, iid, True))
    return out


def suggestions(catalog: Catalog, file: Path, repos: Sequence[str], text: str,
                exclude: Sequence[str] = ()) -> list[Suggestion]:
    """The people of ``catalog`` ranked for an issue of ``repos`` saying ``text``."""
    from coordination.stats.suggest import rank  # lazy: suggest only

    return rank(repos, text, people_work(catalog, file), exclude=exclude)


def suggest_document(catalog: Catalog, file: Path, issue_id: str) -> dict[str, object]:
    """`coord issue suggest ISSUE --json` (and the MCP tool): the issue, and everyone
    ranked with their score's parts and reasons, best first."""
    issue = next((i for i in catalog.coordination.issues if i.id == issue_id), None)
    if issue is None:
        from coordination.catalog.rules.checks import unknown  # lazy: the "did you mean"

        raise unknown(issue_id, [i.id for i in catalog.coordination.issues], "issue")
    ranked = suggestions(catalog, file, issue.repos, f"{issue.title} {issue.description}",
                         exclude=[issue.id])
    return {"issue": issue.id, "repos": list(issue.repos),
            "suggestions": [s.to_dict() for s in ranked]}


def auto_assignee(catalog: Catalog, file: Path, repos: Sequence[str],
                  text: str) -> Suggestion:
    """The first of :func:`suggestions` for a new issue; exit 2 when the catalog names
    nobody (no todo or issue has an assignee, nobody completed anything)."""
    ranked = suggestions(catalog, file, repos, text)
    if not ranked:
        raise UsageError("--assignee auto: the catalog names nobody to suggest (no todo or "
                         "issue has an assignee, and the audit log names nobody who "
                         "completed one)", hint="give --assignee NAME")
    return ranked[0]
