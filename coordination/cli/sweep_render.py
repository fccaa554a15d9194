"""How a sweep is shown: its status (a row per todo, or a big sweep's summary), each
failed todo's last lines of output, its waves and gates, and the live progress of a
sweep being followed (a bar on a terminal, the notices a person must not miss off one).

Human output goes to stderr when the command's stdout is kept for the sweep id (see
:mod:`coordination.cli.sweep`).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import click

from coordination.cli.render import (
    console as out_console,
    err_console,
    esc,
    arg,
    output_lines,
    plural,
    status_style,
    styled,
    table,
)
from coordination.runtime.events import Event
from coordination.status import TodoStatus
from coordination.sweeps import SweepService
from coordination.sweeps import summary as summaries
from coordination.sweeps.reading import (
    ACCEPTED,
    DEFAULT_LINES,
    EventWave,
    GateEntry,
    StatusDocument,
    WaveRow,
    failed_todos,
    last_lines,
)
from coordination.sweeps.summary import (
    MOST_FAILED_SHOWN,
    MOST_ROWS,
    SummaryFailure,
    SweepSummary,
)

if TYPE_CHECKING:
    from rich.console import Console

def _live() -> bool:
    """Show a progress bar: only for people watching a terminal."""
    return sys.stderr.isatty()


class Progress:
    """A Rich progress bar on stderr fed by a sweep's events."""

    def __init__(self, total: int, title: str) -> None:
        # lazy: rich's progress and live display (~15 ms), only on a terminal; `sweep
        # status`, `--json` and a waiting CLI off a terminal never draw a bar
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as RichProgress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.total = total
        self.state: dict[str, str] = {}
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console(),
            transient=False,
        )
        self.task = self.bar.add_task(esc(title), total=total or 1, detail="")

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def on_event(self, ev: Event) -> None:
        text = notice(ev)
        if text:
            self.bar.console.print(text)
        if ev.kind == "todo.held" and ev.todo_id:
            self.state[ev.todo_id] = "held"
        elif ev.todo_id and ev.kind.startswith("todo."):
            self.state[ev.todo_id] = ev.kind.split(".", 1)[1]
        if ev.kind == "sweep.queued" and ev.data.get("resumed"):
            self.state = {}
        if ev.kind in ("sweep.paused", "sweep.unpaused"):
            self.paused = ev.kind == "sweep.paused"
        done = sum(1 for s in self.state.values() if s in ("succeeded", "failed", "skipped", "cancelled",
                                                            "cached"))
        running = sum(1 for s in self.state.values() if s in ("started", "retrying"))
        failed = sum(1 for s in self.state.values() if s == "failed")
        detail = f"running {running}" + (f" [red]failed {failed}[/red]" if failed else "")
        if getattr(self, "paused", False):
            detail += " [yellow]paused[/yellow]"
        self.bar.update(self.task, completed=done, detail=detail)


def _clock(ts: object) -> str:
    """A unix time as the local wall clock (what a person watching compares with)."""
    try:
        return dt.datetime.fromtimestamp(float(str(ts))).strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return str(ts)


def _text(ev: Event, key: str) -> str:
    """Field ``key`` of an event, as user text in Rich markup."""
    return esc(str(ev.data.get(key)))


def _unattended(ev: Event) -> str:
    return (f"[yellow]unattended:[/yellow] {ev.data.get('queued')} queued todo(s) of "
            f"{_text(ev, 'repo')} and no live worker serves it ({_text(ev, 'hint')})")


def _breaker_open(ev: Event) -> str:
    return (f"[red]breaker open:[/red] {_text(ev, 'repo')} after {ev.data.get('failures')} "
            "failed or lost todos in a row; its todos are held (coord repo reset "
            f"{arg(ev.data.get('repo'))} to close it)")


def _gate_waiting(ev: Event) -> str:
    d = ev.data
    until = f", expires {_clock(d.get('expires_at'))}" if d.get("expires_at") else ""
    who = f" of {esc(', '.join(map(str, d.get('from') or [])))}" if d.get("from") else ""
    return (f"[yellow]gate waiting:[/yellow] {esc(ev.todo_id)} needs {d.get('needed')} "
            f"approval(s){who}{until} (coord approve {arg(ev.todo_id)} --sweep "
            f"{arg(ev.sweep_id)})")


def _approved(ev: Event) -> str:
    return (f"[green]approved:[/green] {esc(ev.todo_id)} by {_text(ev, 'by')} "
            f"({ev.data.get('approvals')} of {ev.data.get('needed')})")


def _wave_started(ev: Event) -> str:
    d = ev.data
    return (f"[bold]wave {_text(ev, 'wave')}[/bold] started "
            f"({int(str(d.get('index') or 0)) + 1} of {d.get('waves')}, {d.get('todos')} todo(s))")


def _wave_soaking(ev: Event) -> str:
    return (f"wave {_text(ev, 'wave')} soaking until {_clock(ev.data.get('until'))} "
            f"({ev.data.get('succeeded')} of {ev.data.get('todos')} succeeded)")


def _paced(ev: Event) -> str | None:
    """Only a todo queued for later by its pace is told of; the others are counted."""
    d = ev.data
    if d.get("paced_until") is None:
        return None
    return (f"[yellow]paced:[/yellow] {esc(ev.todo_id)} starts at {_clock(d.get('paced_until'))} "
            f"or later ({esc(str(d.get('reason') or ''))})")


def _rolling_back(ev: Event) -> str:
    """With its trigger: "after TODO-018 failed: exit 1"."""
    d = ev.data
    why = esc(str(d.get("reason") or ""))
    n = int(str(d.get("compensate") or 0))
    if not n:
        return f"[yellow]rolling back[/yellow] {why}: nothing to undo"
    again = "retrying" if d.get("retry") else "undoing"
    return f"[yellow]rolling back[/yellow] {why}: {again} {n} todo(s)"


#: Event kind -> its notice (None: not this one). User text is escaped only in these.
NOTICES: dict[str, Callable[[Event], str | None]] = {
    "repo.unattended": _unattended,
    "repo.breaker_open": _breaker_open,
    "repo.breaker_closed": lambda ev: (f"[green]breaker closed:[/green] {_text(ev, 'repo')} "
                                       f"(by {_text(ev, 'by')})"),
    "todo.held": lambda ev: f"[yellow]held:[/yellow] {esc(ev.todo_id)} ({_text(ev, 'reason')})",
    "gate.waiting": _gate_waiting,
    "gate.approved": _approved,
    "gate.rejected": lambda ev: f"[red]rejected:[/red] {esc(ev.todo_id)} by {_text(ev, 'by')}",
    "gate.expired": lambda ev: (f"[red]gate expired:[/red] {esc(ev.todo_id)} "
                                f"(on_expiry: {_text(ev, 'on_expiry')})"),
    "wave.started": _wave_started,
    "wave.soaking": _wave_soaking,
    "wave.done": lambda ev: f"[green]wave {_text(ev, 'wave')} done[/green]" + (
        f" ({ACCEPTED})" if ev.data.get("accepted") else ""),
    "wave.halted": lambda ev: (f"[red]wave halted:[/red] {_text(ev, 'reason')} "
                               f"({_text(ev, 'action')})"),
    "todo.queued": _paced,
    "sweep.rolling_back": _rolling_back,
}


def notice(ev: Event) -> str | None:
    """A line for the events a person following a sweep must not miss: a repo no
    worker serves, a breaker opening or closing, a todo held by one, a gate's turns,
    a wave's, a todo paced for later, a rollback starting and why (:data:`NOTICES`).
    Every other event (most of them: todos starting and ending) costs a look-up."""
    told = NOTICES.get(ev.kind)
    return None if told is None else told(ev)


def follow_sweep(svc: SweepService, sweep_id: str, *, as_json: bool,
                 total: int | None = None) -> StatusDocument:
    """Wait for a sweep to end, with a progress bar for people; returns its status.
    Off a terminal it prints only the notices (see :func:`notice`), one per line."""
    if not _live():
        def on_event(ev: Event) -> None:
            text = notice(ev)
            if text:
                err_console().print(text, soft_wrap=True)

        return svc.wait(sweep_id, on_event=on_event)
    if total is None:
        total = len(svc.status(sweep_id)["todos"])
    with Progress(total, sweep_id) as prog:
        return svc.wait(sweep_id, on_event=prog.on_event)


#: ``--lines N`` of `sweep status` and `sweep watch`.
lines_option = click.option(
    "--lines", "lines", type=click.IntRange(0, 10_000), default=DEFAULT_LINES,
    show_default=True, metavar="N",
    help="Show each failed todo's last N lines of output (stderr first, then stdout); "
    "0: none. Not with --json, which carries each todo's output_tail.")
def subject(st: StatusDocument) -> str:
    """What a sweep ran, for its first line: the plan, or for a one-todo sweep (`todo
    run`, whose id starts with the todo's) the todo and its plan, if any."""
    todos = list(st["todos"])
    return summaries.subject(st["sweep_id"], st.get("plan"), todos[:5], len(todos))


def _header(con: Console, sweep_id: str, subject_: str, strategy: str | None, status: str,
            reason: str | None, gone: str | None) -> None:
    style = status_style(status or "")
    shown = status
    if gone:  # live, and nobody runs it: say so, not "running"
        style, shown = "yellow", f"orphaned: {gone}"
    con.print(f"sweep [bold]{esc(sweep_id)}[/bold] of {esc(subject_)} ({esc(strategy)}): "
              f"[{style or 'bold'}]{esc(shown)}[/{style or 'bold'}]"
              + (f" - {esc(reason)}" if reason else ""))
    if gone:
        con.print(f"`coord sweep resume {arg(sweep_id)}` adopts it and runs what is left")


def push_line(trigger: dict[str, object] | None) -> str | None:
    """A push-started sweep's line: the push, and the repos whose todos it runs."""
    if not trigger or trigger.get("kind") != "push":
        return None
    repos = trigger.get("repos")
    scope = (f": the plan's todos of {', '.join(map(str, repos))}"
             if isinstance(repos, list) else "")
    return (f"started by a push to {trigger.get('repo')} ({trigger.get('branch')} at "
            f"{trigger.get('sha')}){scope}")


def _row(tid: str, repo: str | None, s: str, attempts: int, exit_code: int | None,
         duration: float | None, worker: str | None, reason: str | None,
         starts_at: str | None, worker_gone: bool) -> tuple[str, ...]:
    stl = status_style(s)
    gone = " (worker gone)" if worker_gone else ""  # stopped beating
    return (esc(tid), esc(repo or ""), (f"[{stl}]{s}[/{stl}]" if stl else s) + gone,
            str(attempts),
            "" if exit_code is None else str(exit_code),
            "" if duration is None else f"{duration:.1f}", esc(worker or ""),
            esc((reason or "") + (f", starts at {starts_at}" if starts_at else "")))


_COLUMNS = ("todo", "repo", "status", "attempts", "exit", "seconds", "worker")


def render_status(st: StatusDocument, *, to_stderr: bool = False,
                  lines: int = DEFAULT_LINES, every: bool = False) -> None:
    """The sweep, a row per todo, then each failed todo's last ``lines`` lines of output
    (:func:`render_failures`). A sweep of more than :data:`MOST_ROWS` todos (a template
    over a fleet) is shown by its summary (:func:`render_summary`), unless ``every``."""
    if not every and len(st["todos"]) > MOST_ROWS:
        render_summary(summaries.summarize(st), to_stderr=to_stderr, lines=lines)
        return
    con = err_console() if to_stderr else out_console()
    _header(con, st["sweep_id"], subject(st), st["strategy"], st["status"], st.get("reason"),
            st.get("orphaned"))
    pushed = push_line(st.get("trigger"))
    if pushed:
        con.print(esc(pushed))
    rows = [_row(tid, v.get("repo"), v["status"], v["attempts"], v["exit_code"],
                 v.get("duration"), v.get("worker"), v.get("reason"), v.get("starts_at"),
                 bool(v.get("worker_gone")))
            for tid, v in st["todos"].items()]
    table(None, [*_COLUMNS, "reason"], rows, empty="no todos", con=con, no_wrap=_COLUMNS)
    _render_waves_gates(con, st["sweep_id"], st.get("waves"), st.get("gates"))
    render_failures(st, lines, to_stderr=to_stderr)


def render_summary(sm: SweepSummary, *, to_stderr: bool = False,
                   lines: int = DEFAULT_LINES) -> None:
    """A big sweep: its counts by status, then a row per todo to look at
    (:data:`~coordination.status.ATTENTION`, failures first), :data:`MOST_ROWS` at most,
    then the first failed ones' last ``lines`` lines of output."""
    con = err_console() if to_stderr else out_console()
    _header(con, sm["sweep_id"], sm["subject"], sm["strategy"], sm["status"], sm["reason"],
            sm["orphaned"])
    pushed = push_line(sm.get("trigger"))
    if pushed:
        con.print(esc(pushed))
    con.print(f"{sm['total']} todos: " + ", ".join(
        f"{n} {styled(k)}" for k, n in sm["counts"].items()), soft_wrap=True)
    rows = [_row(r["todo"], r["repo"], r["status"], r["attempts"], r["exit_code"],
                 r["duration"], r["worker"], r["reason"], r["starts_at"], r["worker_gone"])
            for r in sm["rows"]]
    if rows:
        table(None, [*_COLUMNS, "reason"], rows, empty="no todos", con=con, no_wrap=_COLUMNS)
    left_out = sm["attention"] - len(rows)
    con.print((f"and {left_out} more that did not succeed; " if left_out else "")
              + f"`coord sweep status {arg(sm['sweep_id'])} --all` lists every todo")
    _render_waves_gates(con, sm["sweep_id"], sm.get("waves"), sm.get("gates"))
    _render_failures(con, sm["sweep_id"], lines, sm["failures"], sm["failed"],
                     sm["failed_named"])


def _render_waves_gates(con: Console, sweep_id: str,
                        waves: list[WaveRow] | list[EventWave] | None,
                        gates: dict[str, GateEntry] | None) -> None:
    for w in waves or []:
        con.print(wave_line(w), soft_wrap=True)
    for g, gate in (gates or {}).items():
        by = ", ".join(gate["approvals"]) or "nobody yet"
        more = f"; rejected by {gate['rejected_by']}" if gate.get("rejected_by") else ""
        hint = (f" (coord approve {arg(g)} --sweep {arg(sweep_id)})"
                if gate["status"] == "awaiting_approval" else "")
        con.print(f"gate {esc(g)}: {styled(gate['status'])} - approved by {esc(by)} "
                  f"({len(gate['approvals'])} of {gate['needed']}){esc(more)}{hint}",
                  soft_wrap=True)
        for why in gate.get("refused") or []:
            con.print(f"  refused: {esc(why)}", soft_wrap=True)


def wave_line(w: WaveRow | EventWave) -> str:
    """One wave of a status: its state and counts (a rolled-back sweep's waves, told by
    its events, count what the events said), as the web view shows it."""
    extra = (f", soaking until {_clock(w.get('soak_until'))}" if w.get("soak_until") else "") + (
        f": {w['reason']}" if w.get("reason") else "")
    cap = f", max_parallel {w['max_parallel']}" if w["max_parallel"] else ""
    if "from_events" not in w:
        counts = (f"{w['succeeded']} of {len(w['todos'])} succeeded, needs "
                  f"{w['success_rate']:.0%}")
    else:
        count, succeeded = w.get("count"), w.get("succeeded")
        if count is None and w["state"] == "pending":
            counts = "never started"
        elif succeeded is None:
            counts = f"{'?' if count is None else count} todo(s)"
        else:
            counts = f"{succeeded} of {'?' if count is None else count} succeeded"
    return f"wave {esc(w['name'])}: {styled(w['state'])} - {counts}{cap}{esc(extra)}"


def render_failures(st: StatusDocument, lines: int, *, to_stderr: bool = False) -> None:
    """Why todos failed, where people look: each failed (or compensation_failed) todo's
    last ``lines`` lines of output, stderr first (from the output tail its checkpoint
    keeps); the first :data:`MOST_FAILED_SHOWN` of them, the rest named. After a
    rollback, each todo its undo compensated shows both: its change's output, then its
    undo's (as ``--json`` and the web view keep them)."""
    failed = failed_todos(st["todos"])
    undone = [t for t, v in st["todos"].items()
              if v["status"] == TodoStatus.compensated and "undo_output_tail" in v]
    if lines <= 0 or not (failed or undone):
        return
    con = err_console() if to_stderr else out_console()
    _render_failures(con, st["sweep_id"], lines,
                     [summaries.failure(t, st["todos"][t]) for t in failed[:MOST_FAILED_SHOWN]],
                     len(failed), failed[MOST_FAILED_SHOWN:MOST_FAILED_SHOWN + 10])
    last = f"last {plural(lines, 'line')} of"
    for tid in undone[:MOST_FAILED_SHOWN]:  # its change's output, then what undid it
        v = st["todos"][tid]
        output_lines(f"[bold]{esc(tid)}[/bold] {styled(v['status'])}, {last} its change's "
                     "output:", last_lines(v.get("output_tail"), lines), con=con)
        output_lines(f"[bold]{esc(tid)}[/bold] {last} its undo's output:",
                     last_lines(v.get("undo_output_tail"), lines), con=con)
    if len(undone) > MOST_FAILED_SHOWN:
        rest = undone[MOST_FAILED_SHOWN:]
        con.print(f"and {len(rest)} more compensated: {esc(', '.join(rest[:10]))}"
                  + (", ..." if len(rest) > 10 else "")
                  + f" (their output: coord sweep status {arg(st['sweep_id'])} --json)",
                  soft_wrap=True)


def _render_failures(con: Console, sweep_id: str, lines: int, shown: list[SummaryFailure],
                     failed: int, named: list[str]) -> None:
    if lines <= 0 or not failed:
        return
    last = f"last {plural(lines, 'line')} of"
    for f in shown[:MOST_FAILED_SHOWN]:
        tid = f["todo"]
        why = f.get("reason") or ("" if f["exit_code"] is None else f"exit {f['exit_code']}")
        head = (f"[bold]{esc(tid)}[/bold] {styled(f['status'])}"
                + (f" ({esc(why)})" if why else "") + f", {last} ")
        if "undo_output_tail" in f:  # its undo failed: that output first, then its change's
            output_lines(head + "its undo's output:", last_lines(f["undo_output_tail"], lines),
                         con=con)
            output_lines(f"[bold]{esc(tid)}[/bold] {last} its change's output (before the "
                         "undo):", last_lines(f.get("output_tail"), lines), con=con)
            continue
        output_lines(head + "output:", last_lines(f.get("output_tail"), lines), con=con)
    if failed > MOST_FAILED_SHOWN:
        rest = failed - MOST_FAILED_SHOWN
        con.print(f"and {rest} more failed: {esc(', '.join(named))}"
                  + (", ..." if rest > len(named) else "")
                  + f" (their output: coord sweep status {arg(sweep_id)} --json)",
                  soft_wrap=True)
