"""`coord plan optimize PLAN`: the plan's redundant edges removed, as one audited
edit (:mod:`coordination.planner.optimize`). Parse, call, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from coordination.catalog.audit.log import operation
from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say

if TYPE_CHECKING:
    from coordination.planner.optimize import Optimized


def _human(doc: Optimized) -> None:
    would = "would remove" if doc["dry_run"] else "removed"
    if not doc["removed"]:
        say(f"{esc(doc['plan'])}: no redundant edge ({doc['edges_before']} edge(s))")
        return
    say(f"{esc(doc['plan'])}: {would} {len(doc['removed'])} redundant edge(s) of "
        f"{doc['edges_before']} (blocked_by and the mirrored blocking):")
    for r in doc["removed"]:
        via = f" (implied by {' -> '.join(r['via'])})" if r["via"] else ""
        say(f"  {esc(r['todo'])} blocked_by {esc(r['blocked_by'])}{esc(via)}")
    if doc["dry_run"]:
        say("dry run: nothing changed")


@click.command("optimize")
@click.argument("plan_id", metavar="PLAN")
@click.option("--dry-run", is_flag=True, help="List the edges that would go; change nothing.")
@json_and_context
def optimize_cmd(obj: Context, plan_id: str, dry_run: bool, as_json: bool) -> None:
    """Remove the plan's redundant edges (transitive reduction): a todo's blocked_by
    entry that a longer path already implies goes, with its blocker's mirrored
    blocking entry, in one audited edit. Only edges between todos of the plan as
    written; issue blockers, edges to other plans' todos and a template's bracketed
    references stay. The order any sweep may take is unchanged. A plan with a cycle
    is refused (exit 2; `plan validate` names it).

    \b
    Examples:
      coord plan optimize PLAN-001 --dry-run
      coord plan optimize PLAN-001 --json
    """
    # lazy: the catalog's editor (ruamel), off the import of `coord plan` (a dry run's)
    from coordination.planner import optimize

    doc = optimize.preview(obj.manager.reads.catalog(), plan_id)
    if not dry_run and doc["removed"]:
        with operation("plan_optimize"):  # one entry, under the catalog's lock
            doc = obj.manager.store.update(optimize.edit(plan_id))
    emit(as_json, doc, _human)


