"""A catalog issue mirrored to a forge issue (``coord issue link``), as a change's pull
requests are: the link is the issue's ``forge_issue:`` (the forge issue's page), and

- linking (:func:`link_issue`) pushes the issue's title and state to the forge issue
  (``--create`` opens it first, in the forge project of the issue's one repo with a
  ``forge:``; ``--forge-issue URL`` must be an issue of one of its repos' projects);
- a change of state or title in coord (``issue update``, ``issue close``) is pushed
  (:func:`push_issue`);
- the forge's ``issues`` webhook deliveries, once their signature held, bring the forge
  issue's title and state back (:func:`apply_issue_event`): an echo of coord's own push
  writes nothing;
- when a sweep's sync completes a plan of the issue (a plan with a todo that names the
  issue in ``blocked_by``), the forge issue gets one comment saying so
  (:func:`comment_plan_completed`; the sync decides a completion once).

State: coord's ``open`` and ``in_progress`` are the forge's ``open``, ``resolved`` and
``closed`` its ``closed``; a forge issue closed closes an issue not yet resolved or
closed, one reopened opens an issue that was."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.errors import CoordError, ForgeNotFound, UsageError
from coordination.forge import forge_for, spec_of
from coordination.forge.base import ForgeFactory, ForgeSpec
from coordination.forge.issues import (
    ForgeIssue,
    IssueEvent,
    IssueState,
    issue_number,
    tracker_for,
)

if TYPE_CHECKING:
    from coordination.catalog.manager import CoordinationManager
    from coordination.catalog.models import Catalog, Issue, Repo

log = logging.getLogger("coordination.forge.issue_link")

_CLOSED = ("resolved", "closed")


def forge_state(status: str) -> IssueState:
    """The forge issue's state for a catalog issue's status."""
    return "closed" if status in _CLOSED else "open"


def catalog_status(current: str, state: IssueState) -> str | None:
    """The catalog issue's status after the forge issue became ``state`` (None: as it
    is: an issue in progress stays so while the forge's is open)."""
    if state == "closed":
        return None if current in _CLOSED else "closed"
    return "open" if current in _CLOSED else None


@dataclass(frozen=True)
class Linked:
    """What ``coord issue link`` did (``--json``)."""

    issue: str
    repo: str
    forge: str
    project: str
    number: int
    url: str
    title: str
    state: str
    created: bool
    previous: str | None = None

    def document(self) -> dict[str, object]:
        return {"issue": self.issue, "repo": self.repo, "forge": self.forge,
                "project": self.project, "number": self.number, "forge_issue": self.url,
                "title": self.title, "state": self.state, "created": self.created,
                "previous": self.previous}


def _forge_repos(catalog: Catalog, issue: Issue) -> list[tuple[Repo, ForgeSpec]]:
    """The issue's repos that have a ``forge:``, each with its spec."""
    out = []
    for name in issue.repos:
        repo = catalog.repo(name)
        if repo is not None and repo.forge is not None:
            out.append((repo, spec_of(repo.forge, repo=repo.name)))
    return out


def _projects(pairs: Sequence[tuple[Repo, ForgeSpec]]) -> str:
    return ", ".join(f"{r.name} ({s.kind}: {s.project})" for r, s in pairs) or "none"


def _target(catalog: Catalog, issue: Issue, url: str | None,
            create: bool) -> tuple[Repo, ForgeSpec, int | None]:
    """The repo (and its forge) whose project holds the forge issue, and its number
    (None: to create). :class:`UsageError` naming the repos and the fix otherwise."""
    pairs = _forge_repos(catalog, issue)
    if create == (url is not None):
        raise UsageError("give one of --forge-issue URL and --create",
                         hint=f"coord issue link {issue.id} --create, or --forge-issue "
                              "https://github.com/OWNER/NAME/issues/N")
    if create:
        if len(pairs) != 1:
            which = ", ".join(issue.repos) or "none"
            raise UsageError(
                f"{issue.id} names {len(pairs)} repos with a forge: (its repos: {which}; "
                f"with forge: {_projects(pairs)}); --create needs exactly one",
                hint="link an existing issue with --forge-issue URL, or give the issue one "
                     "repo with forge: (coord issue update ID --repos NAME; coord repo update "
                     "NAME --forge KIND:PROJECT)")
        repo, spec = pairs[0]
        return repo, spec, None
    assert url is not None
    for repo, spec in pairs:
        number = issue_number(url, spec)
        if number is not None:
            return repo, spec, number
    raise UsageError(
        f"{url[:300]!r} is not an issue of the forge project of any of {issue.id}'s repos "
        f"(with forge: {_projects(pairs)})",
        hint="give the issue's page on its repo's forge (https://HOST/PROJECT/issues/N; "
             "GitLab .../-/issues/N), or add the repo to the issue (coord issue update ID "
             "--repos ...)")


def _claimed(catalog: Catalog, issue: Issue, spec: ForgeSpec, number: int) -> str | None:
    """Another catalog issue already linked to that forge issue."""
    for other in catalog.coordination.issues:
        if other.id != issue.id and other.forge_issue and issue_number(
                other.forge_issue, spec) == number:
            return other.id
    return None


def link_issue(manager: CoordinationManager, issue_id: str, *, url: str | None = None,
               create: bool = False, factory: ForgeFactory | None = None,
               env: Mapping[str, str] | None = None) -> Linked:
    """Link ``issue_id`` to the forge issue at ``url``, or to a new one (``create``),
    push its title and state, and record the link. Nothing is written when the input is
    refused (:class:`UsageError`, exit 2) or the forge fails (``ForgeError``)."""
    issue = manager.reads.get_issue(issue_id)  # unknown id: "did you mean"
    catalog = manager.reads.catalog()
    repo, spec, number = _target(catalog, issue, url, create)
    if number is not None:
        other = _claimed(catalog, issue, spec, number)
        if other is not None:
            raise UsageError(f"{url} is linked to {other} already",
                             hint=f"coord issue show {other}; one forge issue mirrors one issue")
    tracker = tracker_for((factory or forge_for)(repo, env))
    want = forge_state(issue.status.value)
    if number is None:
        got = tracker.create_issue(issue.title, _body(issue))
    else:
        try:
            got = tracker.get_issue(number)
        except ForgeNotFound as exc:
            raise UsageError(f"{url} is not an issue {spec.project} shows: {exc.message}",
                             hint="check the number, and that the token may read the "
                                  "project's issues") from None
    if got.title != issue.title or got.state != want:
        got = tracker.edit_issue(got.number, title=issue.title, state=want)
    page = got.url if issue_number(got.url, spec) == got.number else _page(url, got)
    manager.issues.link(issue.id, page)
    return Linked(issue.id, repo.name, spec.kind, spec.project, got.number, page, got.title,
                  got.state, number is None, issue.forge_issue)


def _page(url: str | None, got: ForgeIssue) -> str:
    return url.strip() if url else got.url


def _body(issue: Issue) -> str:
    text = issue.description.strip()
    footer = f"Mirrored from coord's {issue.id} (`coord issue show {issue.id}`)."
    return f"{text}\n\n{footer}" if text else footer


def _linked_repo(catalog: Catalog, issue: Issue) -> tuple[Repo, ForgeSpec, int] | None:
    """The repo whose forge holds the issue's linked forge issue, and its number."""
    if not issue.forge_issue:
        return None
    for repo, spec in _forge_repos(catalog, issue):
        number = issue_number(issue.forge_issue, spec)
        if number is not None:
            return repo, spec, number
    return None


def push_issue(manager: CoordinationManager, issue_id: str, *,
               factory: ForgeFactory | None = None,
               env: Mapping[str, str] | None = None) -> ForgeIssue | None:
    """Push the linked issue's title and state to its forge issue (after ``issue
    update`` or ``close``); None when it is not linked (or no longer to a repo of it).
    A forge failure is raised (the catalog edit stands; linking again pushes)."""
    issue = manager.reads.get_issue(issue_id)
    found = _linked_repo(manager.reads.catalog(), issue)
    if found is None:
        return None
    repo, _spec, number = found
    tracker = tracker_for((factory or forge_for)(repo, env))
    got = tracker.get_issue(number)
    want = forge_state(issue.status.value)
    if got.title == issue.title and got.state == want:
        return got
    return tracker.edit_issue(number, title=issue.title, state=want)


def apply_issue_event(catalog: Path, event: IssueEvent) -> dict[str, object]:
    """A verified forge issue event: each catalog issue linked to that forge issue takes
    its title and state. ``updated``: the issues written (none for an echo of coord's
    own push, or a forge issue no catalog issue is linked to)."""
    from coordination.catalog.manager import CoordinationManager  # lazy: ruamel

    manager = CoordinationManager(catalog)
    cat = manager.reads.catalog()
    updated: list[str] = []
    linked: list[str] = []
    for issue in cat.coordination.issues:
        found = _linked_repo(cat, issue)
        if found is None:
            continue
        _repo, spec, number = found
        if (spec.kind, spec.project.casefold(), number) != (
                event.forge, event.project.casefold(), event.number):
            continue
        linked.append(issue.id)
        assert issue.forge_issue is not None
        status = catalog_status(issue.status.value, event.state)
        done = manager.issues.mirror(issue.id, issue.forge_issue, title=event.title,
                                     status=status)
        if done is not None:
            updated.append(issue.id)
    return {"event": "IssueEvent", "updated": {}, "issues": updated, "linked": linked}


def issues_of_plan(catalog: Catalog, plan_id: str) -> list[Issue]:
    """The linked issues whose plan ``plan_id`` is: a todo of the plan names the issue
    in ``blocked_by``."""
    named = {b for t in catalog.plan_todos(plan_id) for b in t.blocked_by}
    return [i for i in catalog.coordination.issues if i.id in named and i.forge_issue]


def comment_plan_completed(catalog: Path, plan_id: str, *, sweep_id: str | None = None,
                           factory: ForgeFactory | None = None,
                           env: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """One comment on each linked forge issue of ``plan_id``, which a sync has just
    completed (called once per completion). A forge that fails is logged and listed,
    never raised: the sync's edit is made."""
    from coordination.catalog.file.store import CatalogStore  # lazy: ruamel

    cat = CatalogStore(catalog).load()
    plan = cat.plan(plan_id)
    title = f" ({plan.title})" if plan is not None else ""
    out: list[dict[str, object]] = []
    for issue in issues_of_plan(cat, plan_id):
        found = _linked_repo(cat, issue)
        if found is None:
            continue
        repo, _spec, number = found
        by = f" by sweep {sweep_id}" if sweep_id else ""
        body = (f"coord: plan {plan_id}{title} completed{by}: every todo of it is done "
                f"({issue.id}).")
        try:
            tracker_for((factory or forge_for)(repo, env)).comment_issue(number, body)
            out.append({"issue": issue.id, "forge_issue": issue.forge_issue, "commented": True})
        except CoordError as exc:
            log.warning("plan %s completed: no comment on %s's forge issue: %s", plan_id,
                        issue.id, exc.message)
            out.append({"issue": issue.id, "forge_issue": issue.forge_issue,
                        "commented": False, "error": exc.message})
    return out


__all__ = ["Linked", "apply_issue_event", "catalog_status", "comment_plan_completed",
           "forge_state", "issues_of_plan", "link_issue", "push_issue"]
