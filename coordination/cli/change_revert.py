"""`coord change revert PLAN`: take a landed change back out of every repo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coordination.change.model import change_of
from coordination.change.pulls.merge_queue import QUEUE_NAMES
from coordination.change.pulls.pull_revert import reverter_for
from coordination.change.revert import Reverted
from coordination.catalog.selection.templates import planned_for
from coordination.cli.change_state import carried, kept
from coordination.cli.change_verify import verify_with_sweep
from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, print_json, say
from coordination.errors import LandingFailed, OperationFailed
from coordination.runtime.context import get_runtime
from coordination.status import ChangeState as CS
from coordination.status import StepState


@click.command()
@click.argument("plan_id", metavar="PLAN")
@click.option("--dry-run", is_flag=True,
              help="Say per repo what would be reverted (or why it cannot be); push nothing.")
@json_and_context
def revert(obj: Context, plan_id: str, dry_run: bool, as_json: bool) -> None:
    """Revert a landed change in every repo, consumers first (reverse dependency
    order), by a revert commit per repo pushed only over the head read just before
    (or the repo's revert_command, for land: command).

    land: pr: a revert pull request per merged repo instead (its branch
    coord-revert/BRANCH, labelled coord:PLAN); the revert candidates (each revert
    commit, the other repos' base) run the change's verify todos together (coord todo
    run: a live worker serves each) and coord/verify is posted on each revert pull
    request's head from them; then each merged, consumers first, once verified and its
    forge allows it (reviews, checks); where the base requires a merge queue (GitHub)
    or runs merge trains (GitLab), through it, pinned to the revert commit, each waited
    for as land's are (--dry-run says so); run it again to carry on. Until every one
    merged the change stays landed and this says which are open (exit 0).

    When others pushed after the landing, only the change's commits are taken
    back out on top of theirs; a revert that conflicts is refused, naming the
    files. All or none: if a repo's revert is refused, the repos already reverted
    are landed again. A revert killed half-way carries on when run again (nothing
    is pushed twice). Exit 1 when the change is not landed, cannot be reverted
    (each reason printed) or the revert was refused.

    \b
    Examples:
      coord change revert PLAN-004 --dry-run
      coord change revert PLAN-004 --json
    """
    store = obj.manager.store
    # templates: their instances' repos, as a sweep's (refused for this plan's
    # template that selects nothing now, never for another plan's)
    catalog = planned_for(store.path, plan_id)[1]
    cp = change_of(catalog, plan_id, store.base_dir)
    rt = get_runtime(Path(obj.file))
    carried(obj, rt, plan_id)  # landed in the other mode: known here too
    reverter = reverter_for(rt, cp, concurrency={r.name: r.concurrency for r in catalog.repos},
                            verify=verify_with_sweep(Path(obj.file), require_workers=True))
    if dry_run:
        plans, _ = reverter.check()
        refused = [p for p in plans if p.action == "refuse"]
        doc: dict[str, Any] = {"plan": plan_id, "dry_run": True, "ok": not refused,
                               "repos": [p.document() for p in plans], "notes": reverter.notes}

        def human(d: dict[str, Any]) -> None:
            for r in d["repos"]:
                if r["action"] == "revert":
                    said = (f" over {r['head'][:10]} (others pushed since: only the "
                            "change's commits come out)" if r["others_pushed"]
                            else " (still the head)")
                    queue = r.get("merge_queue")
                    say(f"{esc(r['repo'])}: would revert {r['landed'][:10]}{said}" + (
                        f", its revert pull request through the "
                        f"{QUEUE_NAMES.get(queue, 'merge queue')}" if queue else ""))
                else:
                    say(f"{esc(r['repo'])}: {r['action']} - {esc(r['why'] or '')}")

        emit(as_json, doc, human)
        if refused:
            raise OperationFailed(f"{plan_id} cannot be reverted:\n  "
                                  + "\n  ".join(str(p.why) for p in refused))
        return
    try:
        out = reverter.revert()
    except OperationFailed as exc:
        if as_json:
            print_json({"plan": plan_id, "state": "not_reverted", "problems": [str(exc)]})
        raise
    for note in out.notes:
        err_console().print(f"[yellow]warning:[/yellow] {esc(note)}")
    kept(obj, rt, plan_id)
    _audit(obj, out)
    emit(as_json, out.document(), lambda d: say(
        f"{esc(plan_id)}: {d['state']}" + (f" - {esc(d['reason'])}" if d["reason"] else "")
        + (f" (reverted: {esc(', '.join(d['reverted']))})" if d["reverted"] else "")))
    if out.state not in (CS.reverted, StepState.reverting):  # (revert pull requests open: exit 0)
        raise LandingFailed(f"{plan_id} {out.state}: {out.reason}")


def _audit(obj: Context, out: Reverted) -> None:
    """The revert in the catalog's audit log (and so in `coord history`): who, what."""
    from coordination.catalog.audit import log as audit  # lazy: only a revert writes it

    store = obj.manager.store
    try:
        store.record_decision(who=audit.who(Path(obj.file).resolve().parent),
                              op="change.revert", ids=[out.plan], decision=out.document())
    except Exception as exc:  # noqa: BLE001 - the revert stands (events, Redis): say it
        err_console().print(f"[yellow]warning:[/yellow] the revert of {esc(out.plan)} is not "
                            f"in the audit log: {esc(exc)}")
