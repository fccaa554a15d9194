"""`coord doctor`: check the deployment, each finding with its fix (exit 1 on a problem)."""

from __future__ import annotations

import sys

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say, table
from coordination.ops.doctor import Doctor, Report, report, run
from coordination.settings import get_settings

MARKS = {"ok": "[green]ok[/green]", "warning": "[yellow]warning[/yellow]",
         "problem": "[red]PROBLEM[/red]", "not_checked": "[dim]not checked[/dim]"}


@click.command()
@click.option("--repo", "repos", multiple=True, metavar="NAME",
              help="A repo this machine serves (repeatable): its checkout is checked. "
                   "Default: the repos of this host's live workers (embedded: every repo).")
@json_and_context
def doctor(obj: Context, repos: tuple[str, ...], as_json: bool) -> None:
    """Check what coord runs on: the Redis in use (version, maxmemory-policy
    noeviction, persistence, memory headroom, latency, role), the catalog, the
    checkouts of the repos this machine serves, live workers per repo, and clocks
    (this machine's and each worker's against Redis's). Every finding says how to
    fix it. Exit 1 when there is a problem, 0 otherwise (warnings included).

    \b
    Examples:
      coord doctor
      COORD_REDIS_URL=redis://redis.lan:6379/0 coord doctor --repo api --json
    """
    d = Doctor(get_settings(), obj.file, served=list(repos) or None)
    doc = report(d, run(d))

    def human(r: Report) -> None:
        table(f"coord doctor: {esc(r['redis'])}", ["", "check", "finding", "fix"],
              [(MARKS[f["level"]], esc(f["check"]), esc(f["message"]), esc(f["fix"] or ""))
               for f in r["findings"]])
        if r["ok"]:
            say(f"no problem found ({r['warnings']} warning{'s' if r['warnings'] != 1 else ''})")
        else:
            say(f"[red]{r['problems']} problem{'s' if r['problems'] != 1 else ''}[/red], "
                f"{r['warnings']} warning{'s' if r['warnings'] != 1 else ''}")

    emit(as_json, doc, human)
    if not doc["ok"]:
        sys.exit(1)
