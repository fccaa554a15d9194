"""`coord logs TODO [--sweep ID] [--attempt N] [--follow] [--json]`: a todo's whole
output, as its worker kept it, attempt by attempt (:mod:`coordination.sweeps.runlogs.logs`).

The todo's stdout goes to stdout and its stderr to stderr (as ``docker logs`` does: a
pipe gets the one it asks for); which attempt, on which worker, when and how it ended
goes to stderr first. On a terminal, control characters are shown as escapes (a todo's
output never moves the cursor or recolours the screen); into a pipe or file, as written.
"""

from __future__ import annotations

import sys
from typing import IO

import click

from coordination.cli.context import Context, refuse_unrecorded
from coordination.cli.render import (clean, err_console, esc, is_terminal, json_and_context,
                                     print_json)
from coordination.jsonable import dumps
from coordination.runtime.context import Runtime, get_runtime
from coordination.runtime.logs import AttemptRecord, Chunk
from coordination.sweeps.runlogs.logs import Follow, LogDocument, attempt_line, find_sweep, logs_document


@click.command()
@click.argument("todo_id", metavar="TODO")
@click.option("--sweep", "sweep_id", default=None, metavar="ID",
              help="Its run in this sweep (default: the newest sweep it ran in; with "
                   "--follow, a newer live one where it has not ended yet comes first).")
@click.option("--attempt", type=int, default=None, metavar="N",
              help="This attempt (default: the latest; `coord logs TODO` lists them all).")
@click.option("--follow", "-f", is_flag=True,
              help="Print the output as it is written, until the attempt ends (a todo not "
                   "running yet: its next attempt, waited for).")
@json_and_context
def logs(obj: Context, todo_id: str, sweep_id: str | None, attempt: int | None,
         follow: bool, as_json: bool) -> None:
    """A todo's whole output (stdout and stderr), attempt by attempt: each attempt's
    worker, start, end and exit code, and its output as written, masked (mask_env:) and
    capped (COORD_LOG_MAX_BYTES per attempt, where the log says it was cut).

    With --json: one document (its attempts and the chosen one's output); with --follow
    --json, one JSON object per line: the attempt, each chunk, its end.

    \b
    Examples:
      coord logs TODO-004
      coord logs TODO-004 --sweep PLAN-001-20261121093000-ab12 --attempt 1
      coord logs 'TODO-010[api]' --follow
      coord logs TODO-004 --json | jq -r '.output[].text'
    """
    refuse_unrecorded(obj.file, f"no logs of {todo_id}")
    rt = get_runtime(obj.file, reader=True)
    if follow:
        sid = find_sweep(rt, todo_id, sweep_id, waiting=True)
        _follow(rt, sid, todo_id, attempt, as_json)
        return
    doc = logs_document(rt, todo_id, sweep_id=sweep_id, attempt=attempt)
    if as_json:
        print_json(doc)
        return
    _header(doc)
    for line in doc["output"]:
        _write(line["stream"], line["text"])
    _done()


def _header(doc: LogDocument) -> None:
    """Which attempt this is, and the others (to stderr: stdout is the log itself)."""
    con = err_console()
    total = len(doc["attempts"])
    con.print(f"[dim]{esc(doc['todo_id'])} in {esc(doc['sweep_id'])}[/dim]")
    for a in doc["attempts"]:
        mark = "[bold]>[/bold]" if a.get("attempt") == doc["attempt"] else " "
        con.print(f"{mark} [dim]{esc(attempt_line(a, total))}[/dim]")
    if total > 1:
        con.print("[dim]  (another attempt: --attempt N)[/dim]")


def _stream(name: str) -> IO[str]:
    return sys.stdout if name == "stdout" else sys.stderr


def _write(stream: str, text: str) -> None:
    out = _stream(stream)
    out.write(clean(text, lines=True) if is_terminal(out) else text)
    out.flush()


def _done() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def _follow(rt: Runtime, sid: str, todo_id: str, attempt: int | None, as_json: bool) -> None:
    def on_attempt(a: AttemptRecord) -> None:
        if as_json:
            _line({"kind": "attempt", "sweep_id": sid, "todo_id": todo_id, **a})
        else:
            err_console().print(f"[dim]{esc(todo_id)} in {esc(sid)}: "
                                f"{esc(attempt_line(a))}[/dim]")

    def on_chunk(c: Chunk) -> None:
        if as_json:
            _line({"kind": "chunk", "stream": c.stream, "text": c.text, "id": c.id})
        else:
            _write(c.stream, c.text)

    end = Follow(rt, sid, todo_id, attempt, on_chunk, on_attempt).run()
    if as_json:
        _line({"kind": "end", "sweep_id": sid, "todo_id": todo_id,
               **(end if end is not None else {"ended_at": None})})
    elif end is not None:
        err_console().print(f"[dim]{esc(attempt_line(end))}[/dim]")
    else:
        err_console().print("[dim]the attempt ended without its end (its worker gone), "
                            "or the todo ended without running again[/dim]")
    _done()


def _line(obj: dict[str, object]) -> None:
    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()
