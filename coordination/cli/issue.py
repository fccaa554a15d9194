"""`coord issue`: cross-repo issues. Parse, call the manager, render."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.errors import ForgeError
from coordination.cli.options import one_item
from coordination.cli.editing import deleting, given, updated
from coordination.cli.render import (
    SELECTS,
    emit,
    err_console,
    esc,
    fields,
    json_and_context,
    say,
    shown,
    split_list,
    styled,
    table,
)

if TYPE_CHECKING:  # the models and the manager: off `coord todo list`, which imports this
    from coordination.catalog.edits.issue_edits import IssueChanges, IssueDeleted
    from coordination.catalog.models import Issue

ISSUE_STATUSES = ("open", "in_progress", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "critical")


date_type = click.DateTime(formats=["%Y-%m-%d"])


def _as_date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


# -- commands -----------------------------------------------------------------------
@click.group()
def issue() -> None:
    """Cross-repo issues: list, show, create, update, close, delete, suggest, link.

    \b
    Examples:
      coord issue list --status open
      coord issue create --title "Drop Python 3.11" --repos api,jobs
    """


def _issue_table(items: list[Issue]) -> None:
    table(
        "Issues",
        ["id", "status", "priority", "title", "repos", "assignee"],
        [
            (esc(i.id), styled(i.status.value), styled(i.priority.value), esc(i.title),
             esc(", ".join(i.repos)), esc(i.assignee))
            for i in items
        ],
        empty="no issues match",
    )


def _issue_fields(i: Issue) -> None:
    fields(
        f"{esc(i.id)}: {esc(i.title)}",
        shown([
            ("status", i.status.value), ("priority", i.priority.value),
            ("severity", i.severity), ("repos", i.repos), ("assignee", i.assignee),
            ("labels", i.labels), ("created", i.created), ("updated", i.updated),
            ("target", i.target), ("dependencies", i.dependencies), ("blocking", i.blocking),
            ("forge issue", i.forge_issue), ("description", i.description),
        ]),
    )


@issue.command("list")
@click.option("--status", type=click.Choice(ISSUE_STATUSES), help="Only issues with this status.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Only this priority.")
@click.option("--repo", help="Only issues naming this repo.")
@click.option("--assignee", help="Only issues assigned to this person.")
@json_and_context
def list_issues(
    obj: Context, status: str | None, priority: str | None, repo: str | None,
    assignee: str | None, as_json: bool,
) -> None:
    """List issues, optionally filtered.

    \b
    Example:
      coord issue list --status open --repo api
    """
    items = obj.manager.reads.list_issues(status=status, priority=priority, repo=repo,
                                          assignee=assignee)
    emit(as_json, items, _issue_table)


@one_item(issue.command("show"), "issue_id", "ID")
def show_issue(obj: Context, issue_id: str, as_json: bool) -> None:
    """Show one issue.

    \b
    Example:
      coord issue show ISSUE-001
    """
    emit(as_json, obj.manager.reads.get_issue(issue_id), _issue_fields)


@issue.command("create")
@click.option("--title", required=True, help="One-line summary.")
@click.option("--description", default="", help="Longer text.")
@click.option("--repos", multiple=True, metavar="SELECTOR",
              help="Affected repos, " + SELECTS)
@click.option("--priority", type=click.Choice(PRIORITIES), default="medium", show_default=True,
              help="How urgent the issue is.")
@click.option("--severity", default="", help="Free text, e.g. migration, security.")
@click.option("--assignee", help="Who owns it; auto: the first of `coord issue suggest` "
              "for it (said, with why, on stderr).")
@click.option("--label", "labels", multiple=True, help="A label; repeat for more.")
@click.option("--target", type=date_type, help="Target date, YYYY-MM-DD.")
@click.option("--depends-on", "depends_on", multiple=True,
              help="Issues this one waits on, comma-separated.")
@json_and_context
def create_issue(
    obj: Context, title: str, description: str, repos: tuple[str, ...], priority: str,
    severity: str, assignee: str | None, labels: tuple[str, ...], target: dt.datetime | None,
    depends_on: tuple[str, ...], as_json: bool,
) -> None:
    """Create an issue; prints its new id.

    \b
    Example:
      coord issue create --title "Drop Python 3.11" --repos api,jobs \\
          --priority high --label migration
      coord issue create --title "Registry timeouts" --repos api --assignee auto
    """
    selected = obj.select_repos(repos)
    if assignee == "auto":
        from coordination.cli.issue_suggest import auto_assignee  # lazy: suggest only

        first = auto_assignee(obj.manager.reads.catalog(), obj.file, selected,
                              f"{title} {description}")
        assignee = first.person
        err_console().print(f"assignee: {esc(first.person)} (auto: "
                            f"{esc('; '.join(first.reasons))})")
    created = obj.manager.issues.create(
        title, description=description, repos=selected, priority=priority,
        severity=severity, assignee=assignee, labels=list(labels), target=_as_date(target),
        dependencies=split_list(depends_on),
    )
    emit(as_json, created, lambda i: say(esc(i.id)))


@issue.command("suggest")
@click.argument("issue_id", metavar="ID")
@json_and_context
def suggest_issue(obj: Context, issue_id: str, as_json: bool) -> None:
    """Who should take an issue: the people of the catalog (assignees, and who completed
    or closed work) ranked, best first, with the reasons: what they completed in the
    issue's repos (x3), the words the issue shares with what they completed or closed
    (x1, by stem), less their open load (x1: todos not completed, issues open).

    \b
    Example:
      coord issue suggest ISSUE-004
      coord issue suggest ISSUE-004 --json
    """
    from coordination.cli.issue_suggest import suggest_document  # lazy: suggest only

    doc = suggest_document(obj.manager.reads.catalog(), obj.file, issue_id)

    def human(d: dict[str, object]) -> None:
        rows = d["suggestions"]
        assert isinstance(rows, list)
        if not rows:
            say(f"nobody to suggest for {esc(issue_id)}: no todo or issue has an assignee")
            return
        table(f"Who should take {issue_id}", ["person", "score", "why"],
              [(esc(r["person"]), f"{r['score']:g}", esc("; ".join(r["reasons"])))
               for r in rows])

    emit(as_json, doc, human)


@issue.command("update")
@click.argument("issue_id", metavar="ID")
@click.option("--title", help="New title.")
@click.option("--description", help="New description.")
@click.option("--status", type=click.Choice(ISSUE_STATUSES), help="New status.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="New priority.")
@click.option("--severity", help="New severity.")
@click.option("--assignee", help="New assignee ('' to clear).")
@click.option("--repos", multiple=True, metavar="SELECTOR",
              help="Replace the repos, " + SELECTS)
@click.option("--label", "labels", multiple=True, help="Replace the labels; repeat for more.")
@click.option("--target", type=date_type, help="New target date, YYYY-MM-DD.")
@json_and_context
def update_issue(obj: Context, /, issue_id: str, title: str | None, description: str | None,
                 status: str | None, priority: str | None, severity: str | None,
                 assignee: str | None, repos: tuple[str, ...], labels: tuple[str, ...],
                 target: dt.datetime | None, as_json: bool) -> None:
    """Change fields of an issue (only those given); sets `updated` to today.

    \b
    Example:
      coord issue update ISSUE-003 --status in_progress --assignee chloe
    """
    changes: IssueChanges = given(
        title=title, description=description, status=status, priority=priority,
        severity=severity, assignee=assignee,  # '' clears it
        repos=obj.select_repos(repos) if repos else None,
        labels=list(labels) if labels else None,
        target=_as_date(target) if target is not None else None)
    issue = updated(as_json, changes, lambda: obj.manager.issues.update(issue_id, **changes))
    if issue.forge_issue and ({"title", "status"} & set(changes)):
        _push(obj, issue_id)


def _push(obj: Context, issue_id: str) -> None:
    """A linked issue's title and state, pushed to its forge issue (said on stderr)."""
    from coordination.forge.issue_link import push_issue  # lazy: the forge, linked only

    try:
        got = push_issue(obj.manager, issue_id)
    except ForgeError as exc:
        exc.message = (f"{issue_id} is changed in the catalog, but its forge issue was not: "
                       f"{exc.message}")
        exc.hint = (exc.hint or "") + (f"; then push it again: coord issue link {issue_id} "
                                       "--forge-issue URL")
        raise
    if got is not None:
        err_console().print(f"forge issue {esc(got.url)}: {esc(got.state)}")


@issue.command("link")
@click.argument("issue_id", metavar="ID")
@click.option("--forge-issue", "url", metavar="URL",
              help="The forge issue to mirror it to: its page, an issue of the forge project "
                   "of one of the issue's repos.")
@click.option("--create", is_flag=True,
              help="Open a new forge issue in the project of the issue's one repo with a "
                   "forge:.")
@json_and_context
def link_issue(obj: Context, issue_id: str, url: str | None, create: bool,
               as_json: bool) -> None:
    """Mirror an issue to a forge issue (GitHub, GitLab, Gitea/Forgejo): its title and
    state are pushed now and whenever `issue update` or `issue close` changes them, the
    forge's `issues` webhook brings the forge issue's back, and a sweep that completes a
    plan of the issue (a plan with a todo blocked by it) comments on it once. Recorded
    as the issue's `forge_issue:`. Exit 2, nothing changed, when the URL is not an issue
    of one of its repos' forge projects, or when --create finds not exactly one repo
    with a forge:.

    \b
    Example:
      coord issue link ISSUE-003 --create
      coord issue link ISSUE-003 --forge-issue https://github.com/acme/api/issues/12
    """
    from coordination.forge.issue_link import link_issue as link  # lazy: the forge

    done = link(obj.manager, issue_id, url=url, create=create)

    def human(d: dict[str, object]) -> None:
        verb = "created" if d["created"] else "linked"
        say(f"{esc(d['issue'])} {verb} {esc(d['forge_issue'])} ({esc(d['forge'])} "
            f"{esc(d['project'])}: {esc(d['state'])})")

    emit(as_json, done.document(), human)


@one_item(issue.command("close"), "issue_id", "ID")
def close_issue(obj: Context, issue_id: str, as_json: bool) -> None:
    """Close an issue (status closed, `updated` today).

    \b
    Example:
      coord issue close ISSUE-002
    """
    closed = obj.manager.issues.close(issue_id)
    emit(as_json, closed, lambda i: say(f"closed {esc(i.id)}"))
    if closed.forge_issue:
        _push(obj, issue_id)


@deleting(issue.command("delete"), "issue_id", "ID",
          "Also drop the references to it (other issues' dependencies/blocking, "
          "todos' blocked_by) instead of refusing.")
def delete_issue(obj: Context, issue_id: str, force: bool) -> IssueDeleted:
    """Delete an issue. Refused (exit 2, naming every referrer) while other issues or
    todos name it, unless --force, which drops those references in the same edit.

    \b
    Example:
      coord issue delete ISSUE-004
      coord issue delete ISSUE-002 --force --json
    """
    return obj.manager.issues.delete(issue_id, force=force)
