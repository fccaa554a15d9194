"""`coord change publish PLAN`: push each repo's change branch and open (or update) its pull
request on the repo's forge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coordination.catalog.selection.templates import planned_for
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import change_of
from coordination.change.pulls.publish import Published, Publisher
from coordination.cli.change_state import carried
from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, say
from coordination.errors import OperationFailed, UsageError
from coordination.runtime.context import get_runtime


def _adopt(given: tuple[str, ...]) -> dict[str, int]:
    """``--pr REPO=N`` options as repo -> number (a UsageError for a malformed one)."""
    out: dict[str, int] = {}
    for item in given:
        repo, _, number = item.partition("=")
        if not repo or not number.isdigit() or int(number) < 1:
            raise UsageError(f"--pr {item!r}: expected REPO=NUMBER (e.g. --pr api=42)",
                             hint="the number its pull request's page shows")
        out[repo] = int(number)
    return out


@click.command()
@click.argument("plan_id", metavar="PLAN")
@click.option("--dry-run", is_flag=True,
              help="Say per repo what would be pushed, opened or updated; change nothing.")
@click.option("--draft", is_flag=True, default=None,
              help="Open the pull requests as drafts (default: the plan's change: draft:).")
@click.option("--pr", "adopt", multiple=True, metavar="REPO=N",
              help="Take REPO's pull request N (opened by hand) as the change's: it must be "
              "from the change branch into the repo's base, open. Repeatable.")
@json_and_context
def publish(obj: Context, plan_id: str, dry_run: bool, draft: bool | None,
            adopt: tuple[str, ...], as_json: bool) -> None:
    """Push each repo's change branch (never its base) and open its pull request on the
    repo's forge, or bring the one it has up to date: one per repo, however often this
    runs. Each body names the change and its verify evidence, links the sibling pull
    requests and has a Depends-On: line per provider's pull request; each is labelled
    coord:PLAN; coord/verify is posted on each head (success when every verify todo
    passed on the current candidates, failure when one failed, else pending).

    A pull request closed or merged by hand is reported, never reopened or replaced;
    a commit someone else pushed to the change branch is never overwritten. Exit 1
    when a repo was refused (each says why), 2 for bad input (a repo without forge:,
    a --pr that is not the change's), with nothing changed.

    \b
    Examples:
      coord change publish PLAN-004 --dry-run
      coord change publish PLAN-004
      coord change publish PLAN-004 --pr api=42 --json
    """
    adopted = _adopt(adopt)
    store = obj.manager.store
    catalog = planned_for(store.path, plan_id)[1]
    cp = change_of(catalog, plan_id, store.base_dir)
    rt = get_runtime(Path(obj.file))
    carried(obj, rt, plan_id)
    out = Publisher(rt, cp, ChangeForges(cp), draft=draft).publish(dry_run=dry_run,
                                                                    adopt=adopted)
    if not dry_run:
        _audit(obj, out)
    emit(as_json, out.document(), _say)
    if not out.ok:
        raise OperationFailed(f"{plan_id}: not every repo was published:\n  " + "\n  ".join(
            f"{r.repo}: {r.why}" for r in out.repos if r.action == "refused"))


_VERBS = {"opened": "opened", "updated": "updated", "up_to_date": "up to date",
          "unchanged": "unchanged", "landed": "landed", "refused": "refused", "would_open": "would open",
          "would_update": "would update"}


def _say(d: dict[str, Any]) -> None:
    for r in d["repos"]:
        pr = f" #{r['number']} {esc(r['url'])}" if r["number"] else ""
        say(f"{esc(r['repo'])}: {_VERBS.get(r['action'], r['action'])}{pr}"
            + (" (branch pushed)" if r["pushed"] else "")
            + (f", coord/verify {r['status']}" if r["status"] else "")
            + (f" - {esc(r['why'])}" if r["why"] and r["action"] != "refused" else ""))
    say(f"verification: {d['verification']}")


def _audit(obj: Context, out: Published) -> None:
    """What was published, in the catalog's audit log (and so in `coord history`)."""
    from coordination.catalog.audit import log as audit  # lazy: only a publish writes it

    store = obj.manager.store
    try:
        store.record_decision(who=audit.who(Path(obj.file).resolve().parent),
                              op="change.publish", ids=[out.plan], decision=out.document())
    except Exception as exc:  # noqa: BLE001 - what was published stands: say it
        err_console().print(f"[yellow]warning:[/yellow] the publishing of {esc(out.plan)} is "
                            f"not in the audit log: {esc(exc)}")
