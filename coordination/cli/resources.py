"""`coord resources`: who holds which lease and resource slot, and who waits."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_option, say, table
from coordination.runtime.context import get_runtime
from coordination.sweeps.holding import ResourcesDocument
from coordination.sweeps.holding import resources as read


@click.command()
@json_option
@click.pass_obj
def resources(obj: Context, as_json: bool) -> None:
    """Each repo's lease slots and each shared resource's slots: who holds them
    (sweep, todo, worker, since), capacity used, and the waiting line in the order
    it will be served.

    \b
    Examples:
      coord resources
      coord resources --json | jq '.repos[] | select(.used == .capacity) | .name'
    """
    catalog = obj.manager.catalog()
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
