"""The notices a waiting `plan sweep --wait` or `sweep watch` prints off a terminal, one
per event a person must not miss, pinned byte for byte for every kind that has one; user
text in them is escaped for Rich markup (a bracketed instance id prints whole), the kinds
with no notice print nothing, and reading those costs no import of Rich."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from typing import Any

import pytest

from coordination.cli.sweep_render import notice
from coordination.runtime.events import Event
from tests.unit.support.cli import ROOT

TODO, SWEEP = "TODO-010[api]", "S-1[x]"
AT = 1_700_000_000.0
#: AT on the local clock, as each notice writes a time.
WHEN = time.strftime("%H:%M:%S", time.localtime(AT))
CLOCK = dt.datetime.fromtimestamp(AT).strftime("%H:%M:%S")


def event(kind: str, data: dict[str, Any], todo_id: str | None = TODO) -> Event:
    return Event("1-0", kind, AT, SWEEP, todo_id, data)


NOTICES: list[tuple[str, dict[str, Any], str]] = [
    ("repo.unattended", {"repo": "web[1]", "queued": 3, "hint": "start [b]coord worker[/b]"},
     r"[yellow]unattended:[/yellow] 3 queued todo(s) of web[1] and no live worker serves "
     r"it (start \[b]coord worker\[/b])"),
    ("repo.breaker_open", {"repo": "web[x]", "failures": 5},
     r"[red]breaker open:[/red] web\[x] after 5 failed or lost todos in a row; its todos "
     r"are held (coord repo reset 'web\[x]' to close it)"),
    ("repo.breaker_closed", {"repo": "web[x]", "by": "ann[x]"},
     r"[green]breaker closed:[/green] web\[x] (by ann\[x])"),
    ("todo.held", {"reason": "breaker [open]"},
     r"[yellow]held:[/yellow] TODO-010\[api] (breaker \[open])"),
    ("gate.waiting", {"needed": 2},
     r"[yellow]gate waiting:[/yellow] TODO-010\[api] needs 2 approval(s) (coord approve "
     r"'TODO-010\[api]' --sweep 'S-1\[x]')"),
    ("gate.waiting", {"needed": 2, "from": ["ann[x]", "bob"], "expires_at": AT},
     rf"[yellow]gate waiting:[/yellow] TODO-010\[api] needs 2 approval(s) of ann\[x], bob, "
     rf"expires {WHEN} (coord approve 'TODO-010\[api]' --sweep 'S-1\[x]')"),
    ("gate.approved", {"by": "ann[x]", "approvals": 1, "needed": 2},
     r"[green]approved:[/green] TODO-010\[api] by ann\[x] (1 of 2)"),
    ("gate.rejected", {"by": "ann[x]"}, r"[red]rejected:[/red] TODO-010\[api] by ann\[x]"),
    ("gate.expired", {"on_expiry": "fail[x]"},
     r"[red]gate expired:[/red] TODO-010\[api] (on_expiry: fail\[x])"),
    ("wave.started", {"wave": "canary[x]", "index": 1, "waves": 3, "todos": 4},
     r"[bold]wave canary\[x][/bold] started (2 of 3, 4 todo(s))"),
    ("wave.soaking", {"wave": "canary[x]", "until": AT, "succeeded": 3, "todos": 4},
     rf"wave canary\[x] soaking until {WHEN} (3 of 4 succeeded)"),
    ("wave.done", {"wave": "canary[x]"}, r"[green]wave canary\[x] done[/green]"),
    ("wave.done", {"wave": "canary[x]", "accepted": True},
     r"[green]wave canary\[x] done[/green] (accepted by an unpause after it halted)"),
    ("wave.halted", {"reason": "rate [low]", "action": "pause[x]"},
     r"[red]wave halted:[/red] rate \[low] (pause\[x])"),
    ("todo.queued", {"paced_until": AT, "reason": "pace [repo]"},
     rf"[yellow]paced:[/yellow] TODO-010\[api] starts at {CLOCK} or later (pace \[repo])"),
    ("sweep.rolling_back", {"reason": "after TODO-018[a] failed: exit 1", "compensate": 2},
     r"[yellow]rolling back[/yellow] after TODO-018\[a] failed: exit 1: undoing 2 todo(s)"),
    ("sweep.rolling_back", {"reason": "x[y]", "compensate": "2", "retry": True},
     r"[yellow]rolling back[/yellow] x\[y]: retrying 2 todo(s)"),
    ("sweep.rolling_back", {"reason": "x[y]", "compensate": 0},
     r"[yellow]rolling back[/yellow] x\[y]: nothing to undo"),
]

#: What each kind says when its event carries none of its fields (an older writer's).
BARE: list[tuple[str, str | None, str]] = [
    ("repo.unattended", TODO,
     "[yellow]unattended:[/yellow] None queued todo(s) of None and no live worker serves "
     "it (None)"),
    ("repo.breaker_open", None,
     "[red]breaker open:[/red] None after None failed or lost todos in a row; its todos are "
     "held (coord repo reset '' to close it)"),
    ("repo.breaker_closed", None, "[green]breaker closed:[/green] None (by None)"),
    ("todo.held", None, "[yellow]held:[/yellow]  (None)"),
    ("gate.waiting", None,
     "[yellow]gate waiting:[/yellow]  needs None approval(s) (coord approve '' --sweep "
     r"'S-1\[x]')"),
    ("gate.approved", TODO, r"[green]approved:[/green] TODO-010\[api] by None (None of None)"),
    ("gate.rejected", TODO, r"[red]rejected:[/red] TODO-010\[api] by None"),
    ("gate.expired", TODO, r"[red]gate expired:[/red] TODO-010\[api] (on_expiry: None)"),
    ("wave.started", None, "[bold]wave None[/bold] started (1 of None, None todo(s))"),
    ("wave.soaking", None, "wave None soaking until None (None of None succeeded)"),
    ("wave.done", None, "[green]wave None done[/green]"),
    ("wave.halted", None, "[red]wave halted:[/red] None (None)"),
    ("sweep.rolling_back", None, "[yellow]rolling back[/yellow] : nothing to undo"),
]

#: Kinds a person following a sweep is not told about one by one (the bar counts them).
SILENT = ["todo.succeeded", "todo.failed", "todo.started", "todo.retrying", "todo.skipped",
          "sweep.queued", "sweep.succeeded", "sweep.failed", "sweep.cancelled"]


@pytest.mark.parametrize(("kind", "data", "text"), NOTICES,
                         ids=[f"{k}-{i}" for i, (k, _d, _t) in enumerate(NOTICES)])
def test_each_kind_has_its_notice(kind: str, data: dict[str, Any], text: str) -> None:
    assert notice(event(kind, data)) == text


@pytest.mark.parametrize(("kind", "todo_id", "text"), BARE, ids=[k for k, _t, _x in BARE])
def test_a_notice_of_an_event_without_its_fields(kind: str, todo_id: str | None,
                                                 text: str) -> None:
    assert notice(event(kind, {}, todo_id)) == text


@pytest.mark.parametrize("kind", SILENT)
def test_kinds_without_a_notice(kind: str) -> None:
    assert notice(event(kind, {"repo": "web[x]", "reason": "r[x]"})) is None


def test_a_queued_todo_is_told_only_when_paced() -> None:
    assert notice(event("todo.queued", {"repo": "web"})) is None
    assert notice(event("todo.queued", {"paced_until": None})) is None


PROBE = """
import sys
from coordination.cli.sweep_render import notice
from coordination.runtime.events import Event
for kind in sys.argv[1:]:
    assert notice(Event("1-0", kind, 0.0, "S-1", "TODO-1", {"repo": "web"})) is None, kind
print(sorted(m for m in sys.modules if m == "rich" or m.startswith("rich.")))
"""


def test_events_without_a_notice_import_no_rich() -> None:
    r = subprocess.run([sys.executable, "-c", PROBE, *SILENT, "todo.queued"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=True)
    assert r.stdout.strip() == "[]", r.stdout
