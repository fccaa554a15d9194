"""`coord approve` and `coord reject`: people deciding a sweep's gate."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context
from coordination.errors import NotFoundError
from coordination.names import some
from coordination.runtime.context import get_runtime
from coordination.sweeps import SweepService
from coordination.sweeps.governance.approvals import Decision, Decisions


def _decide(obj: Context, todo_id: str, sweep_id: str, decision: str, comment: str,
            as_json: bool) -> None:
    svc = SweepService(get_runtime(obj.file), obj.file)
    try:
        out = svc.decide(sweep_id, todo_id, decision, comment=comment)
    except NotFoundError:
        if "[" in todo_id:
            raise
        # A template's id: every waiting instance of it (or the same error, said for both)
        _decide_all(svc, todo_id, sweep_id, decision, comment, as_json)
        return

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


def _decide_all(svc: SweepService, template_id: str, sweep_id: str, decision: str,
                comment: str, as_json: bool) -> None:
    """Every waiting instance of a gate template, each on its own binding; a summary
    (counts, the instances refused named), exit 1 when one was refused."""
    out = svc.decide_template(sweep_id, template_id, decision, comment=comment)
    for note in out["notes"]:
        err_console().print(f"note: {note}")

    def human(o: Decisions) -> None:
        did = "approved" if decision == "approve" else "rejected"
        n = len(o["decided"])
        said = ", ".join(f"{k:,} {st}" for st, k in sorted(o["statuses"].items()))
        err_console().print(f"{did} {n:,} instance(s) of {esc(template_id)} by {esc(o['by'])} "
                            f"in sweep {esc(sweep_id)}: now {said}")
        waiting = [d["todo_id"] for d in o["decided"] if d["status"] == "awaiting_approval"]
        if waiting:
            need = o["decided"][0]["needed"]
            err_console().print(f"  still waiting for more approvals (of {need}): "
                                f"{esc(some(waiting))}")
        if o["not_waiting"]:
            err_console().print("  not waiting, left as they are: " + ", ".join(
                f"{k:,} {st}" for st, k in sorted(o["not_waiting"].items())))
        for tid, why in list(o["failed"].items())[:10]:
            err_console().print(f"  refused: {esc(tid)}: {esc(why)}")
        if len(o["failed"]) > 10:
            err_console().print(f"  refused: {len(o['failed']) - 10:,} more (--json lists all)")

    emit(as_json, out, human)
    if out["failed"]:
        sys.exit(1)


def _vote(f: Callable[..., None]) -> click.Command:
    """`coord approve|reject TODO --sweep ID [--comment TEXT] [--json]`: a vote on a gate
    (the options applied bottom up, as a decorator stack is)."""
    f = json_and_context(f)
    f = click.option("--comment", default="",
                     help="Why (kept in the events and the audit log).")(f)
    f = click.option("--sweep", "sweep_id", required=True,
                     help="The sweep whose gate it is.")(f)
    return click.command()(click.argument("todo_id")(f))


@_vote
def approve(obj: Context, todo_id: str, sweep_id: str, comment: str, as_json: bool) -> None:
    """Approve a gate of a sweep (a todo with gate:, awaiting_approval).

    Who approves is COORD_USER, else git's user.email, else the OS user. Approvers
    are distinct people (of the gate's from:, when it names them); a gate with
    starter_may_approve: false refuses the sweep's starter. With the catalog's
    approvers: {allowed_signers: FILE}, the approval is signed with the SSH key
    COORD_APPROVE_KEY names (else the ssh-agent's) and counts only if FILE gives
    that key one of the gate's approvers (one key: one approver).

    A template's id (TODO-010, whose instances TODO-010[api]... are gates of the
    sweep) approves every instance awaiting approval at once, each on its own
    binding (with approvers:, one signature per instance); it prints counts and
    exits 1 if an instance's vote was refused (the others stand).

    \b
    Examples:
      coord approve TODO-050 --sweep PLAN-005-20260101120000-ab12 --comment "canary ok"
      coord approve TODO-010 --sweep PLAN-006-20260101120000-cd34
    """
    _decide(obj, todo_id, sweep_id, "approve", comment, as_json)


@_vote
def reject(obj: Context, todo_id: str, sweep_id: str, comment: str, as_json: bool) -> None:
    """Reject a gate of a sweep: it ends failed, and what it blocks is skipped.
    A template's id rejects every waiting instance of it (see `coord approve`).

    \b
    Example:
      coord reject TODO-050 --sweep PLAN-005-20260101120000-ab12 --comment "error rate up"
    """
    _decide(obj, todo_id, sweep_id, "reject", comment, as_json)
