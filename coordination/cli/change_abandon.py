"""`coord change abandon PLAN`: give a change up: its pull requests closed with a comment
naming why, coord's change branches deleted, the change ended abandoned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coordination.catalog.selection.templates import planned_for
from coordination.change.pulls.abandon import Abandoned, Abandoner
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import change_of
from coordination.cli.change_state import carried, kept
from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, say
from coordination.errors import OperationFailed, UsageError
from coordination.runtime.context import get_runtime

#: The reason a comment names when none is given.
DEFAULT_REASON = "no longer needed"
#: The longest reason taken (it goes into a comment on every pull request).
REASON_MAX = 2000


@click.command()
@click.argument("plan_id", metavar="PLAN")
@click.option("--reason", default=None, metavar="TEXT",
              help=f"Why: named in the comment on each pull request and in the change "
              f"(default: {DEFAULT_REASON!r}).")
@click.option("--keep-branches", is_flag=True,
              help="Leave the change branches on the remotes (default: coord's are deleted).")
@click.option("--dry-run", is_flag=True,
              help="Say per repo what would be closed and deleted; change nothing.")
@json_and_context
def abandon(obj: Context, plan_id: str, reason: str | None, keep_branches: bool,
            dry_run: bool, as_json: bool) -> None:
    """Give a change up: each open pull request of it is closed with a comment naming
    the reason, each change branch coord pushed is deleted from its remote (only when
    its head there is still what coord pushed: someone else's commit is kept and said;
    never a base branch; --keep-branches keeps them all), and the change ends
    abandoned (it leaves the merge train; nothing lands it any more). coord change
    prune then removes its worktrees.

    A change with a repo landed (or a pull request merged) is refused, nothing changed:
    coord change revert takes it back out first. Running it again finishes what a first
    try left (a forge that could not be reached). Exit 1 when a repo could not be
    closed or its branch deleted (each says why), 2 for bad input.

    \b
    Examples:
      coord change abandon PLAN-004 --dry-run
      coord change abandon PLAN-004 --reason "superseded by PLAN-007"
      coord change abandon PLAN-004 --keep-branches --json
    """
    text = DEFAULT_REASON if reason is None else " ".join(reason.split())
    if not text:
        raise UsageError("--reason is empty", hint="say why in a few words, or leave "
                         f"--reason out ({DEFAULT_REASON!r})")
    if len(text) > REASON_MAX:
        raise UsageError(f"--reason is {len(text)} characters long (at most {REASON_MAX})",
                         hint="a sentence; link a longer text")
    store = obj.manager.store
    catalog = planned_for(store.path, plan_id)[1]
    cp = change_of(catalog, plan_id, store.base_dir)
    rt = get_runtime(Path(obj.file))
    carried(obj, rt, plan_id)
    out = Abandoner(rt, cp, ChangeForges(cp)).abandon(text, keep_branches=keep_branches,
                                                      dry_run=dry_run)
    if not dry_run:
        kept(obj, rt, plan_id)
        _audit(obj, out)
    emit(as_json, out.document(), _say)
    if not out.ok:
        raise OperationFailed(f"{plan_id}: abandoned, but not everything was cleaned up:\n  "
                              + "\n  ".join(f"{r.repo}: {r.why}" for r in out.repos
                                            if r.pr_action == "failed"
                                            or r.branch_action == "failed")
                              + f"\n(coord change abandon {plan_id} again finishes it)")


_PR = {"closed": "pull request closed", "already_closed": "pull request closed already",
       "merged": "pull request merged (reverted since)", "none": "no pull request",
       "would_close": "would close its pull request", "failed": "pull request NOT closed"}
_BRANCH = {"deleted": "branch deleted", "kept": "branch kept", "absent": "no branch",
           "not_coords": "branch kept (not coord's head)", "would_delete": "would delete "
           "its branch", "failed": "branch NOT deleted"}


def _say(d: dict[str, Any]) -> None:
    for r in d["repos"]:
        pr = r["pr"]
        num = f" #{pr['number']}" if pr["number"] else ""
        say(f"{esc(r['repo'])}: {_PR.get(pr['action'], pr['action'])}{num}, "
            f"{_BRANCH.get(r['branch'], r['branch'])}"
            + (f" - {esc(r['why'])}" if r["why"] else ""))
    say(f"{esc(d['plan'])}: " + ("would be abandoned" if d["dry_run"] else d["state"])
        + f" - {esc(d['reason'])}")


def _audit(obj: Context, out: Abandoned) -> None:
    """The abandon in the catalog's audit log (and so in `coord history`)."""
    from coordination.catalog.audit import log as audit  # lazy: only an abandon writes it

    store = obj.manager.store
    try:
        store.record_decision(who=audit.who(Path(obj.file).resolve().parent),
                              op="change.abandon", ids=[out.plan], decision=out.document())
    except Exception as exc:  # noqa: BLE001 - the abandon stands: say it
        err_console().print(f"[yellow]warning:[/yellow] the abandon of {esc(out.plan)} is "
                            f"not in the audit log: {esc(exc)}")
