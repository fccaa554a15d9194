"""`coord sweep status` of a big sweep: how many todos ended how, then the ones to look at.

A sweep of more than :data:`MOST_ROWS` todos (a template over a fleet) is shown as the
number of its todos in each status, then the todos a person should look at
(:data:`coordination.status.ATTENTION`: failed, held, awaiting approval, running,
cancelled, skipped...), failures first, :data:`MOST_ROWS` at most, and the last lines
of the first failed ones' output: a :class:`SweepSummary`.

Two ways to the same summary:

- :func:`summary` reads it from the sweep's tally (kept by the transition scripts in
  the sweep's hash, lua/_common.lua) and the checkpoints of the todos it shows: a few
  hundred small fields and at most ~70 todos, whatever the sweep's size, and not the
  spec (megabytes at 10,000 todos). None when it cannot: a small sweep, a sweep that
  keeps no tally (recorded before it), one whose tally does not add up, or one with
  gates, waves or a rollback running (their parts of the view need the spec);
- :func:`summarize` makes it from the full status document (:func:`.reading.status`,
  what ``--json`` prints): every other caller, and the check that both agree.

The checkpoints stay the truth: ``--json`` and ``--all`` read every one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import Checkpoint, Tally
from coordination.status import ATTENTION, TodoStatus
from coordination.sweeps.reading import (
    FAILED,
    GateEntry,
    StatusDocument,
    TodoEntry,
    EventWave,
    WaveRow,
    mark_gone,
    missing,
    todo_entry,
)
from coordination.sweeps.runner import orphaned

log = logging.getLogger(__name__)

#: A sweep of more todos than this is summarised (``--all``: a row per todo).
MOST_ROWS = 50
#: At most this many failed todos have their output shown (the rest are named).
MOST_FAILED_SHOWN = 20
#: ... and this many of the rest by name.
MOST_FAILED_NAMED = 10
#: The order the todos to look at are listed in (then by id): what went wrong first,
#: then what waits for someone, then what runs, then what did not run because of them.
ATTENTION_ORDER = (
    TodoStatus.failed, TodoStatus.compensation_failed, TodoStatus.held,
    TodoStatus.awaiting_approval, TodoStatus.running, TodoStatus.cancelled,
    TodoStatus.skipped, TodoStatus.compensated,
)
_RANK = {str(s): i for i, s in enumerate(ATTENTION_ORDER)}
assert set(ATTENTION_ORDER) == ATTENTION, "every attention status has its place"

#: Record fields a summary shows (never the spec).
SUMMARY_FIELDS = ("plan", "strategy", "status", "reason", "todos", "shape", "runner",
                  "rollback_reason", "trigger")


class SummaryRow(TypedDict):
    """One todo a summary lists."""

    todo: str
    repo: str | None
    status: str
    attempts: int
    exit_code: int | None
    duration: float | None
    worker: str | None
    reason: str | None
    starts_at: str | None
    worker_gone: bool


class SummaryFailure(TypedDict):
    """One failed todo whose last lines of output a summary shows."""

    todo: str
    status: str
    reason: str | None
    exit_code: int | None
    output_tail: str
    #: a rollback's undo that failed: its output (``output_tail``: its change's)
    undo_output_tail: NotRequired[str]


class SweepSummary(TypedDict):
    """What `coord sweep status` shows of a sweep of more than :data:`MOST_ROWS` todos."""

    sweep_id: str
    subject: str  # what it ran: its plan, or its first todos
    strategy: str | None
    status: str
    reason: str | None
    orphaned: str | None
    rollback_reason: str | None
    total: int
    counts: dict[str, int]  # status -> todos (none at zero)
    attention: int  # todos in an ATTENTION status
    rows: list[SummaryRow]  # the first MOST_ROWS of them, in ATTENTION_ORDER then by id
    failed: int  # todos failed (or compensation_failed)
    failures: list[SummaryFailure]  # the first MOST_FAILED_SHOWN of them, with output
    failed_named: list[str]  # the next MOST_FAILED_NAMED of them, by id
    trigger: dict[str, object] | None  # what started it (a push: its repo, sha and scope)
    waves: NotRequired[list[WaveRow] | list[EventWave]]
    gates: NotRequired[dict[str, GateEntry]]


def subject(sweep_id: str, plan: str | None, first: list[str], total: int) -> str:
    """What a sweep ran, for its first line: the plan, or for a one-todo sweep (`todo
    run`, whose id starts with the todo's) the todo and its plan, if any; ``first``: its
    first todos (5 are enough)."""
    plan = plan or ""
    if total == 1 and first and sweep_id.startswith(f"{first[0]}-"):
        return f"{first[0]} ({plan})" if plan else first[0]
    if not plan and total > 5:  # `coord run` over a fleet: not 1,000 ids on one line
        return f"{', '.join(first[:3])} and {total - 3} more"
    return plan or ", ".join(first) or "no todos"


def attention_order(statuses: Mapping[str, str]) -> list[str]:
    """The todos of ``statuses`` (todo -> status) that need a look, in the order shown."""
    return sorted((t for t, s in statuses.items() if s in _RANK), key=lambda t: (
        _RANK[statuses[t]], t))


def _row(todo_id: str, v: TodoEntry) -> SummaryRow:
    return {"todo": todo_id, "repo": v.get("repo"), "status": v["status"],
            "attempts": v["attempts"], "exit_code": v["exit_code"],
            "duration": v.get("duration"), "worker": v.get("worker"),
            "reason": v.get("reason"), "starts_at": v.get("starts_at"),
            "worker_gone": bool(v.get("worker_gone"))}


def failure(todo_id: str, v: TodoEntry) -> SummaryFailure:
    """A failed todo of a status document, as a summary shows its output."""
    out: SummaryFailure = {"todo": todo_id, "status": v["status"], "reason": v.get("reason"),
                           "exit_code": v["exit_code"], "output_tail": v.get("output_tail") or ""}
    if "undo_output_tail" in v:
        out["undo_output_tail"] = v["undo_output_tail"]
    return out


def _build(sweep_id: str, rec: Mapping[str, object], first: list[str], total: int,
           counts: dict[str, int], order: list[str], failed: list[str],
           entries: Mapping[str, TodoEntry], gone: str | None) -> SweepSummary:
    plan = rec.get("plan")
    reason, rollback = rec.get("reason"), rec.get("rollback_reason")
    return {
        "sweep_id": sweep_id,
        "subject": subject(sweep_id, str(plan) if plan else None, first, total),
        "strategy": str(rec.get("strategy")) if rec.get("strategy") is not None else None,
        "status": str(rec.get("status") or ""),
        "reason": str(reason) if reason else None,
        "orphaned": gone,
        "rollback_reason": str(rollback) if rollback else None,
        "total": total,
        "counts": {s: n for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                   if n},
        "attention": len(order),
        "rows": [_row(t, entries[t]) for t in order[:MOST_ROWS]],
        "failed": len(failed),
        "failures": [failure(t, entries[t]) for t in failed[:MOST_FAILED_SHOWN]],
        "failed_named": failed[MOST_FAILED_SHOWN:MOST_FAILED_SHOWN + MOST_FAILED_NAMED],
        "trigger": dict(trigger) if isinstance(trigger := rec.get("trigger"), dict) else None,
    }


def summarize(doc: StatusDocument) -> SweepSummary:
    """The summary of a full status document (what :func:`summary` reads from the tally)."""
    todos = doc["todos"]
    counts: dict[str, int] = {}
    for v in todos.values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    order = attention_order({t: v["status"] for t, v in todos.items()})
    failed = [t for t in order if todos[t]["status"] in FAILED]
    rec = {"plan": doc.get("plan"), "strategy": doc.get("strategy"), "status": doc["status"],
           "reason": doc.get("reason"), "rollback_reason": doc.get("rollback_reason"),
           "trigger": doc.get("trigger")}
    out = _build(doc["sweep_id"], rec, list(todos)[:5], len(todos), counts, order, failed,
                 todos, doc.get("orphaned"))
    if "waves" in doc:
        out["waves"] = doc["waves"]
    if "gates" in doc:
        out["gates"] = doc["gates"]
    return out


def summary(rt: Runtime, sweep_id: str) -> SweepSummary | None:
    """The summary of a big sweep read from its tally (see the module docstring); None
    when the full document must be read instead. :class:`NotFoundError` for an unknown
    sweep."""
    rec, tally = rt.checkpoints.get_tally(sweep_id, SUMMARY_FIELDS)
    if rec is None:
        raise missing(rt, sweep_id)
    total = int(str(rec.get("todos") or 0))
    shape = rec.get("shape")
    if (tally is None or total <= MOST_ROWS or not isinstance(shape, dict)
            or shape.get("gates") or shape.get("waves") or shape.get("mode") != "run"):
        return None
    why = _unsound(tally, total)
    if why is not None:
        log.warning("sweep %s: its tally %s; reading every checkpoint instead", sweep_id, why)
        return None
    attention = tally["attention"]
    order = attention_order(attention)
    failed = [t for t in order if attention[t] in FAILED]
    shown = list(dict.fromkeys(order[:MOST_ROWS] + failed[:MOST_FAILED_SHOWN]))
    cps, repos = rt.checkpoints.get_rows(sweep_id, shown, tails=failed[:MOST_FAILED_SHOWN])
    entries = {t: todo_entry(cps.get(t) or Checkpoint(status=TodoStatus.pending), repos.get(t))
               for t in shown}
    mark_gone(rt, {t: entries[t] for t in order[:MOST_ROWS]})
    first = [str(t) for t in shape.get("head") or []]
    return _build(sweep_id, rec, first, total, tally["counts"], order, failed, entries,
                  orphaned(rec, rt.embedded))


def _unsound(tally: Tally, total: int) -> str | None:
    """Why a tally cannot be shown (None: it adds up): counts that are negative, that do
    not sum to the sweep's todos, or attention entries that disagree with them. (A
    worker of before the tally moving a status would leave it so.)"""
    counts = tally["counts"]
    if any(n < 0 for n in counts.values()):
        return f"has a negative count ({counts})"
    if sum(counts.values()) != total:
        return f"counts {sum(counts.values())} todos of {total}"
    listed: dict[str, int] = {}
    for st in tally["attention"].values():
        listed[st] = listed.get(st, 0) + 1
    if any(listed.get(s, 0) != counts.get(s, 0) for s in ATTENTION):
        return "lists other todos than it counts"
    return None
