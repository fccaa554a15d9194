"""`coord why TODO [--sweep ID] [--json]`: hit or miss of a ``cache:`` todo's last run,
and for a miss which parts of its key changed; of a template (``TODO-010``), every
instance's, counted and grouped by reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say
from coordination.names import some
from coordination.runtime.context import get_runtime
from coordination.sweeps.why import is_template
from coordination.sweeps.why import why as why_doc

#: Paths named on screen before "and N more" (--json has them all).
SHOWN = 12


@click.command()
@click.argument("todo_id", metavar="TODO")
@click.option("--sweep", "sweep_id", default=None, metavar="ID",
              help="Its run in this sweep (default: its last run in any sweep).")
@json_and_context
def why(obj: Context, todo_id: str, sweep_id: str | None, as_json: bool) -> None:
    """Why a cache: todo's last run was reused, or ran: what changed since the nearest
    earlier success (files, env names, the command, probe outputs, upstream todos).
    A template's id (TODO-010) explains every instance: those of the sweep, else
    those its for_each selects now, counted by outcome and grouped by reason
    (--json has each instance's document).

    \b
    Examples:
      coord why TODO-004
      coord why TODO-004 --sweep PLAN-001-20261121093000-ab12 --json
      coord why TODO-010 --sweep PLAN-006-20261121093000-cd34
    """
    doc = why_doc(get_runtime(obj.file), todo_id, sweep_id=sweep_id, catalog_path=obj.file)
    emit(as_json, doc, lambda d: _template_human(d) if is_template(d) else _human(d))


OUTCOME_WORDS = {"hit": "[green]hit[/green]", "miss": "[yellow]miss[/yellow]",
                 "bypassed": "[yellow]bypassed[/yellow]", "refused": "[red]refused[/red]",
                 "no_key": "[yellow]no key[/yellow]", "no_record": "no record"}


def _template_human(doc: Any) -> None:
    """A template's instances: the counts, then each group (outcome, reason) with ten
    of its instances named and the rest counted."""
    where = f" in {doc['sweep_id']}" if doc["sweep_id"] else ""
    counts = ", ".join(f"{n:,} {OUTCOME_WORDS.get(o, o)}" for o, n in
                       sorted(doc["outcomes"].items(), key=lambda kv: -kv[1]))
    say(f"{esc(doc['todo_id'])}{esc(where)}: a template, {doc['instances']:,} instance(s): "
        f"{counts}")
    for g in doc["groups"]:
        say(f"  {OUTCOME_WORDS.get(g['outcome'], g['outcome'])} ({g['count']:,}): "
            f"{esc(g['reason'])}")
        say(f"    {esc(some(g['instances']))}")
    sweep = f" --sweep {doc['sweep_id']}" if doc["sweep_id"] else ""
    one = f"one instance in full: coord why '{doc['todo_id']}[REPO]'{sweep}"
    say(f"[dim]{esc(one)}[/dim]")


def _when(ts: object) -> str:
    if not isinstance(ts, (int, float)):
        return "?"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _run(r: dict[str, Any]) -> str:
    who = f" on {r['worker']}" if r.get("worker") else ""
    return (f"{r.get('sweep_id')} run {r.get('run')} ({r.get('todo_id')}{who}, "
            f"{_when(r.get('finished_at'))})")


def _human(doc: Any) -> None:
    tid, where = doc["todo_id"], f" in {doc['sweep_id']}" if doc["sweep_id"] else ""
    outcome = doc["outcome"]
    if outcome == "no_record":
        if doc["cache"] is False:
            say(f"{esc(tid)}: not cached: cache is off for it (add `cache: true` to it or "
                "its repo)")
        else:
            say(f"{esc(tid)}{esc(where)}: no cache lookup recorded (it has not run with "
                "cache: on, or its record expired: COORD_CACHE_DAYS)")
        return
    key = (doc["key"] or "")[:12]
    if outcome == "hit":
        say(f"{esc(tid)}{esc(where)}: [green]hit[/green] (key {key}): reused "
            f"{esc(_run(doc['cached_from'] or {}))}")
        return
    if outcome == "no_key":
        say(f"{esc(tid)}{esc(where)}: [yellow]ran uncached[/yellow]: no key ({esc(doc['error'])})")
        return
    if outcome == "refused":
        say(f"{esc(tid)}{esc(where)}: [red]refused[/red] (key {key}): the entry stored under "
            "its key was not reused, so it ran")
        say(f"  {esc(doc['refused'])}")
    else:
        head = "miss, --no-cache: ran without looking" if outcome == "bypassed" else "miss"
        say(f"{esc(tid)}{esc(where)}: [yellow]{head}[/yellow] (key {key})")
    nearest = doc["nearest"]
    if nearest is None:
        say("  no earlier success of it is stored (first run, or expired: COORD_CACHE_DAYS)")
        return
    say(f"  compared with {esc(_run(nearest))}")
    for line in change_lines(doc["changed"]):
        say("  " + esc(line))


def change_lines(changed: dict[str, Any]) -> list[str]:
    """The parts that differ, one screen: at most :data:`SHOWN` paths per list."""
    if not changed:
        return ["no part differs (an identical success expired or was stored meanwhile)"]
    out: list[str] = []

    def paths(label: str, ps: list[str]) -> None:
        more = f" and {len(ps) - SHOWN} more" if len(ps) > SHOWN else ""
        out.append(f"{label} ({len(ps)}): {', '.join(ps[:SHOWN])}{more}")

    if changed.get("tree"):
        old, new = changed["tree"]
        out.append(f"HEAD's tree: {str(old)[:12]} -> {str(new)[:12]}"
                   + (" (which files: not known here, the old tree is not in this checkout)"
                      if changed.get("paths_unknown") else ""))
    if changed.get("paths"):
        paths("files changed", changed["paths"])
    elif changed.get("tree") and not changed.get("paths_unknown"):
        out.append("files changed: none (the same content, committed differently)")
    if changed.get("paths_more"):
        out.append("  (more files differ than an entry lists by name)")
    if changed.get("inputs"):
        paths("untracked inputs changed", changed["inputs"])
    if changed.get("env"):
        out.append(f"env values changed: {', '.join(changed['env'])}")
    for name in ("command", "cwd"):
        if changed.get(name):
            old, new = changed[name]
            out.append(f"{'command' if name == 'command' else 'working directory'}:")
            out.append(f"  - {old}")
            out.append(f"  + {new}")
    for p in changed.get("probes") or []:
        out.append(f"probe `{p['probe']}`:")
        out.append(f"  - {_one_line(p['old'])}")
        out.append(f"  + {_one_line(p['new'])}")
    if changed.get("upstream"):
        out.append(f"upstream todos whose keys changed: {', '.join(changed['upstream'])}")
    return out


def _one_line(text: object) -> str:
    if text is None:
        return "(not a probe then)"
    s = " / ".join(str(text).strip().splitlines())
    return s if len(s) <= 100 else s[:97] + "..."
