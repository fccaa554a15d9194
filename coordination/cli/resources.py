"""`coord resources`: who holds which lease and resource slot, and who waits."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say, table
from coordination.runtime.context import get_runtime
from coordination.sweeps.governance.holding import ResourcesDocument
from coordination.sweeps.governance.holding import resources as read


@click.command()
@click.option("--graph", is_flag=True, help="Who waits on whom: each todo waiting for a "
              "repo or resource slot -> the todos holding it (a gone holder marked), and "
              "any cycle among the waits.")
@json_and_context
def resources(obj: Context, graph: bool, as_json: bool) -> None:
    """Each repo's lease slots and each shared resource's slots: who holds them
    (sweep, todo, worker, since), capacity used, and the waiting line in the order
    it will be served.

    \b
    Examples:
      coord resources
      coord resources --json | jq '.repos[] | select(.used == .capacity) | .name'
      coord resources --graph
    """
    catalog = obj.manager.reads.catalog()
    if graph:
        _graph(obj, {r.name: r.concurrency for r in catalog.repos},
               {x.name: x.capacity for x in catalog.resources}, as_json)
        return
    doc = read(get_runtime(obj.file), {r.name: r.concurrency for r in catalog.repos},
               {x.name: x.capacity for x in catalog.resources})

    def human(d: ResourcesDocument) -> None:
        for title, lines in (("Repo leases", d["repos"]), ("Shared resources", d["resources"])):
            if not lines and title == "Shared resources":
                continue  # none declared: say nothing
            rows = []
            for line in lines:
                for s in line["slots"]:
                    h = s["holder"]
                    rows.append((esc(line["name"]), f"{s['slot'] + 1}/{line['capacity']}",
                                 "free" if h is None else esc(h["todo_id"] or "?"),
                                 "" if h is None else esc(h["sweep_id"] or ""),
                                 "" if h is None else esc(h["worker"] or ""),
                                 "" if h is None else esc(h["since"] or "")))
            table(title, ["name", "slot", "holder", "sweep", "worker", "since (UTC)"], rows,
                  empty="none")
        used = [f"{esc(x['name'])} {x['used']}/{x['capacity']}"
                for x in (*d["repos"], *d["resources"])]
        if used:
            say("capacity used: " + ", ".join(used))
        waits = [(x["name"], w) for x in (*d["repos"], *d["resources"]) for w in x["waiting"]]
        if waits:
            table("Waiting (in the order they will be served)",
                  ["for", "todo", "sweep", "waiting since (UTC)"],
                  [(esc(n), esc(w["todo_id"]), esc(w["sweep_id"]), esc(w["waiting_since"]))
                   for n, w in waits])
        else:
            say("nobody waits")

    emit(as_json, doc, human)


def _graph(obj: Context, repos: dict[str, int], shared: dict[str, int], as_json: bool) -> None:
    """``coord resources --graph``: the wait-for graph (see :mod:`coordination.sweeps.waits`)."""
    from coordination.sweeps.waits import WaitGraph, wait_graph  # lazy: the graph code

    doc, _held = wait_graph(get_runtime(obj.file), repos, shared)

    def human(d: WaitGraph) -> None:
        rows = []
        for e in d["edges"]:
            holders = ", ".join(
                f"{h['todo_id'] or '?'} ({h['sweep_id'] or 'no sweep'}, worker "
                f"{h['worker'] or '?'}{', GONE' if h['gone'] else ''})" for h in e["holders"])
            rows.append((esc(e["todo_id"]), esc(e["sweep_id"]), esc(e["waiting_for"]),
                         esc(holders or "(a slot frees: next ask starts it)")))
        table("Waits (waiter -> what it waits for -> held by)",
              ["waiter", "sweep", "waits for", "held by"], rows, empty="nobody waits")
        for c in d["cycles"]:
            say("[red]wait cycle:[/red] " + esc(" -> ".join(c)))
        if rows and not d["cycles"]:
            say("no cycle among the waits")

    emit(as_json, doc, human)
