"""Issue edits, the ``issues`` part of :class:`~coordination.catalog.manager.CoordinationManager`:
create, update, close and delete an issue, each one :meth:`CatalogStore.update` (one audit
entry), checked against the document being edited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypedDict, Unpack

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import CatalogEdits, delete_item
from coordination.catalog.edits.document import (
    ISSUE_KEYS,
    ReferenceDict,
    append_item,
    append_unique,
    find_item,
    new_id_in,
    new_item,
    put,
    section,
)
from coordination.catalog.edits.inputs import choice, require_repos as _require_repos, \
    today as _today, uniq as _uniq
from coordination.catalog.models import Issue, IssueStatus, Priority
from coordination.errors import UsageError
from coordination.jsonable import JSONObject

# Fields `update_issue` may change; ids and the blocking mirrors are not among them.
ISSUE_EDITABLE = {
    "title", "description", "status", "priority", "severity", "repos", "target", "assignee",
    "labels",
}


class IssueChanges(TypedDict, total=False):
    """What :meth:`Issues.update` takes (``ISSUE_EDITABLE``)."""

    title: str | None
    description: str | None
    status: str | None
    priority: str | None
    severity: str | None
    repos: Iterable[str] | None
    target: dt.date | None
    assignee: str | None
    labels: Iterable[str] | None


class IssueDeleted(TypedDict):
    """``coord issue delete --json``."""

    deleted: str
    issue: JSONObject
    dropped: list[ReferenceDict]


class Issues(CatalogEdits):
    """Issues created, changed, closed and deleted (``manager.issues``)."""

    @audited("create_issue")
    def create(
        self, title: str, *, description: str = "", repos: Iterable[str] = (),
        priority: str = "medium", severity: str = "", assignee: str | None = None,
        labels: Iterable[str] = (), target: dt.date | None = None, status: str = "open",
        dependencies: Iterable[str] = (),
    ) -> Issue:
        """Append a new issue; ``dependencies`` also get it in their ``blocking``."""
        if not title.strip():
            raise UsageError("an issue needs a non-empty title")
        choice(priority, Priority, "priority")
        choice(status, IssueStatus, "issue status")
        repos, labels, deps = _uniq(repos), _uniq(labels), _uniq(dependencies)

        def edit(doc: CommentedMap) -> str:
            _require_repos(doc, repos)
            for d in deps:
                find_item(doc, "issues", d, "issue")
            new_id = new_id_in(doc, "issue", self.store.path)
            append_item(section(doc, "issues", create=True), new_item(
                ISSUE_KEYS, id=new_id, title=title, description=description, status=status,
                priority=priority, severity=severity, repos=repos, created=_today(),
                updated=_today(), target=target, dependencies=deps, assignee=assignee, labels=labels,
            ))
            for d in deps:
                append_unique(find_item(doc, "issues", d, "issue"), "blocking", new_id, ISSUE_KEYS)
            return new_id

        return self.reads.get_issue(self.store.update(edit))

    @audited("update_issue")
    def update(self, id_: str, **changes: Unpack[IssueChanges]) -> Issue:
        """Change some fields; None or an empty value removes the field. Sets ``updated``."""
        bad = sorted(set(changes) - ISSUE_EDITABLE)
        if bad:
            raise UsageError(
                f"cannot update {', '.join(bad)} of an issue; "
                f"editable: {', '.join(sorted(ISSUE_EDITABLE))}"
            )
        if not changes:
            raise UsageError("nothing to update", hint="pass at least one field to change")
        if "title" in changes and not (changes["title"] or "").strip():
            raise UsageError("an issue needs a non-empty title")
        if changes.get("status") is None:
            changes.pop("status", None)  # removing would silently reset to the default
        if changes.get("priority") is None:
            changes.pop("priority", None)
        choice(changes.get("status"), IssueStatus, "issue status")
        choice(changes.get("priority"), Priority, "priority")
        for key in ("repos", "labels"):
            if key in changes:
                changes[key] = _uniq(changes[key] or ())

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "issues", id_, "issue")
            if "repos" in changes:
                _require_repos(doc, changes["repos"] or ())
            for key, value in changes.items():
                put(item, key, value, ISSUE_KEYS)
            put(item, "updated", _today(), ISSUE_KEYS)

        self.store.update(edit)
        return self.reads.get_issue(id_)

    @audited("close_issue")
    def close(self, id_: str) -> Issue:
        return self.update(id_, status=IssueStatus.closed.value)

    @audited("link_issue")
    def link(self, id_: str, url: str | None) -> Issue:
        """Record (``url``) or drop (None) the forge issue the issue is mirrored to
        (``forge_issue``); whether ``url`` is an issue of one of its repos' forge is the
        caller's check (:mod:`coordination.forge.issue_link`). Sets ``updated``."""

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "issues", id_, "issue")
            put(item, "forge_issue", url, ISSUE_KEYS)
            put(item, "updated", _today(), ISSUE_KEYS)

        self.store.update(edit)
        return self.reads.get_issue(id_)

    @audited("mirror_issue")
    def mirror(self, id_: str, url: str, *, title: str | None = None,
               status: str | None = None) -> Issue | None:
        """What the forge says of the issue linked to ``url`` (a verified webhook
        delivery): its title and status written when they differ, in one edit made only
        while the issue is still linked to ``url``. None: nothing changed (no edit, no
        audit entry), so an echo of coord's own push writes nothing."""
        choice(status, IssueStatus, "issue status")
        if title is not None and not title.strip():
            title = None

        def edit(doc: CommentedMap) -> bool:
            item = find_item(doc, "issues", id_, "issue")
            if item.get("forge_issue") != url:
                return False
            changed = False
            for key, value in (("title", title), ("status", status)):
                if value is not None and str(item.get(key) or "") != value:
                    put(item, key, value, ISSUE_KEYS)
                    changed = True
            if changed:
                put(item, "updated", _today(), ISSUE_KEYS)
            return changed

        before = self.reads.get_issue(id_)
        if before.forge_issue != url or (
                (title is None or before.title == title)
                and (status is None or before.status.value == status)):
            return None  # nothing to write: no edit, no audit entry
        return self.reads.get_issue(id_) if self.store.update(edit) else None

    @audited("delete_issue")
    def delete(self, id_: str, *, force: bool = False) -> IssueDeleted:
        """Remove an issue that other issues (``dependencies``, ``blocking``) or todos
        (``blocked_by``) may name, as :func:`~coordination.catalog.edits.edit_base.delete_item`
        says."""
        before = self.reads.get_issue(id_)  # unknown id: "did you mean"
        return {"deleted": id_, "issue": before.model_dump(mode="json"),
                "dropped": [r.to_dict() for r in delete_item(self.store, "issue", id_, force)]}
