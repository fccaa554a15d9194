"""`coord approve` and `coord reject`: people deciding a sweep's gate."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_option
from coordination.runtime.context import get_runtime
from coordination.sweeps import SweepService
from coordination.sweeps.approvals import Decision


def _decide(obj: Context, todo_id: str, sweep_id: str, decision: str, comment: str,
            as_json: bool) -> None:
    out = SweepService(get_runtime(obj.file), obj.file).decide(sweep_id, todo_id, decision,
                                                               comment=comment)

    for note in out.get("notes") or []:  # (on stderr, --json or not)
        err_console().print(f"note: {esc(note)}")
    for why in out.get("refused") or []:
        err_console().print(f"refused: {esc(why)}")
    tid, sid = esc(todo_id), esc(sweep_id)

    def human(o: Decision) -> None:
        if o["decision"] == "reject":
            err_console().print(f"{tid} rejected by {esc(o['by'])}: sweep {sid} goes no "
                                "further past it")
        elif o["status"] == "succeeded":
            err_console().print(f"{tid} approved by {esc(', '.join(o['approvals']))}: "
                                f"sweep {sid} goes on")
        else:
            err_console().print(f"{tid} approved by {esc(o['by'])}: {len(o['approvals'])} of "
                                f"{o['needed']} approvals")

    emit(as_json, out, human)


@click.command()
@click.argument("todo_id")
@click.option("--sweep", "sweep_id", required=True, help="The sweep whose gate it is.")
@click.option("--comment", default="", help="Why (kept in the events and the audit log).")
@json_option
@click.pass_obj
def approve(obj: Context, todo_id: str, sweep_id: str, comment: str, as_json: bool) -> None:
    """Approve a gate of a sweep (a todo with gate:, awaiting_approval).

    Who approves is COORD_USER, else git's user.email, else the OS user. Approvers
    are distinct people (of the gate's from:, when it names them); a gate with
    starter_may_approve: false refuses the sweep's starter. With the catalog's
    approvers: {allowed_signers: FILE}, the approval is signed with the SSH key
    COORD_APPROVE_KEY names (else the ssh-agent's) and counts only if FILE gives
    that key one of the gate's approvers (one key: one approver).

    \b
    Example:
      coord approve TODO-050 --sweep PLAN-005-20260101120000-ab12 --comment "canary ok"
    """
    _decide(obj, todo_id, sweep_id, "approve", comment, as_json)


@click.command()
@click.argument("todo_id")
@click.option("--sweep", "sweep_id", required=True, help="The sweep whose gate it is.")
@click.option("--comment", default="", help="Why (kept in the events and the audit log).")
@json_option
@click.pass_obj
def reject(obj: Context, todo_id: str, sweep_id: str, comment: str, as_json: bool) -> None:
    """Reject a gate of a sweep: it ends failed, and what it blocks is skipped.

    \b
    Example:
      coord reject TODO-050 --sweep PLAN-005-20260101120000-ab12 --comment "error rate up"
    """
    _decide(obj, todo_id, sweep_id, "reject", comment, as_json)
