"""`coord history trends`: per repo and per todo, how runs ended and how long they took
over a window; the flakiest and slowest todos; velocity and bottlenecks
(:mod:`coordination.stats.flow`).

Read in one pass over the runs the runtime's store
(:class:`~coordination.runtime.history.HistoryStore`) gives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TypedDict

from coordination.errors import UsageError
from coordination.runtime.history import HistoryStore, OpenStore, Outcome, as_float
from coordination.stats.flow import Bottleneck, Ended, Velocity, bottlenecks, velocity

#: Outcomes that count as a run in trends (skipped or cancelled todos never ran).
SUCCEEDED, FAILED = "succeeded", "failed"
#: Longest `history trends --days` (a century): any more is no window at all.
MAX_DAYS = 36500.0


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p% of values at or
    below it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[k - 1]


class Figures(TypedDict):
    """A repo's or a todo's runs in `coord history trends --json`."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    p50_s: float | None
    p95_s: float | None


class Flaky(TypedDict):
    """A todo with both outcomes (``flakiest``)."""

    todo: str
    repo: str
    runs: int
    failed: int
    success_rate: float | None
    flips: int


class Slow(TypedDict):
    """A todo by the p95 of its durations (``slowest``)."""

    todo: str
    repo: str
    runs: int
    p50_s: float | None
    p95_s: float


class Trends(TypedDict):
    """`coord history trends --json`."""

    repos: dict[str, Figures]
    todos: dict[str, Figures]
    flakiest: list[Flaky]
    slowest: list[Slow]
    velocity: Velocity
    bottlenecks: list[Bottleneck]


class _Tally:
    """Outcomes of one repo or todo, in time order: counts, durations, flips."""

    __slots__ = ("ok", "failed", "durations", "last", "flips", "repo")

    def __init__(self, repo: str) -> None:
        self.ok = self.failed = self.flips = 0
        self.durations: list[float] = []
        self.last: str | None = None
        self.repo = repo

    def add(self, status: str, duration: float | None) -> None:
        if status == SUCCEEDED:
            self.ok += 1
        elif status == FAILED:
            self.failed += 1
        else:
            return  # skipped, cancelled...: never ran
        if self.last is not None and status != self.last:
            self.flips += 1
        self.last = status
        if duration is not None:
            self.durations.append(float(duration))

    def figures(self) -> Figures:
        runs = self.ok + self.failed
        self.durations.sort()
        p50, p95 = percentile(self.durations, 50), percentile(self.durations, 95)
        return {"runs": runs, "succeeded": self.ok, "failed": self.failed,
                "success_rate": round(self.ok / runs, 4) if runs else None,
                "p50_s": None if p50 is None else round(p50, 3),
                "p95_s": None if p95 is None else round(p95, 3)}


TOP = 10  # entries of flakiest and slowest


def trends(store: HistoryStore | None, *, repo: str | None = None, days: float = 30.0,
           now: float | None = None, repos: set[str] | None = None) -> Trends:
    """Per repo and per todo over the last ``days``: runs (todos that ran to succeeded or
    failed), succeeded, failed, success_rate, p50_s and p95_s of their durations
    (nearest rank); ``flakiest``: todos with both outcomes, most outcome flips between
    consecutive runs first; ``slowest``: todos by p95; ``velocity`` and ``bottlenecks``:
    see :mod:`coordination.stats.flow`. One read of the store."""
    now = time.time() if now is None else now
    runs = [] if store is None else store.ended(since=now - days * 86400)
    outcomes = _outcomes(runs, repo)
    by_repo: dict[str, _Tally] = {}
    by_todo: dict[str, _Tally] = {}
    for todo_id, todo_repo, status, duration, _at in outcomes:  # oldest first
        if repos is not None and todo_repo not in repos:
            continue
        r = by_repo.get(todo_repo)
        if r is None:
            r = by_repo[todo_repo] = _Tally(todo_repo)
        t = by_todo.get(todo_id)
        if t is None:
            t = by_todo[todo_id] = _Tally(todo_repo)
        t.repo = todo_repo  # its latest repo
        r.add(status, duration)
        t.add(status, duration)
    per_repo = {name: by_repo[name].figures() for name in sorted(by_repo)}
    todos = {name: by_todo[name].figures() for name in sorted(by_todo)}
    flaky: list[Flaky] = [
        {"todo": name, "repo": by_todo[name].repo, "runs": f["runs"], "failed": f["failed"],
         "success_rate": f["success_rate"], "flips": by_todo[name].flips}
        for name, f in todos.items() if f["succeeded"] and f["failed"]]
    flaky.sort(key=lambda x: (-x["flips"] / max(1, x["runs"] - 1), -x["runs"], x["todo"]))
    slow: list[Slow] = [
        {"todo": name, "repo": by_todo[name].repo, "runs": f["runs"], "p50_s": f["p50_s"],
         "p95_s": p95} for name, f in todos.items() if (p95 := f["p95_s"]) is not None]
    slow.sort(key=lambda x: (-x["p95_s"], x["todo"]))
    return {"repos": per_repo, "todos": todos, "flakiest": flaky[:TOP], "slowest": slow[:TOP],
            "velocity": velocity(runs, now=now, repos=repos, repo=repo),
            "bottlenecks": bottlenecks(runs, repos=repos, repo=repo)}


def _outcomes(runs: Sequence[Ended], repo: str | None) -> list[Outcome]:
    """:meth:`HistoryStore.outcomes` of runs already read."""
    out: list[Outcome] = []
    for _sweep, rows in runs:
        for r in rows:
            if repo is None or r.get("repo") == repo:
                duration = r.get("duration")
                out.append((str(r.get("todo_id")), str(r.get("repo")), str(r.get("status")),
                            None if duration is None else as_float(duration),
                            as_float(r.get("finished_at") or 0)))
    out.sort(key=lambda o: o[4])
    return out


def trends_document(*, history: OpenStore, repo: str | None = None, days: float = 30.0,
                    repos: set[str] | None = None) -> Trends:
    """`coord history trends --json`."""

    if not 0 < days <= MAX_DAYS:  # NaN fails both
        raise UsageError(f"days must be more than 0 and at most {MAX_DAYS:g}, not {days:g}")
    store = history()
    try:
        return trends(store, repo=repo, days=days, repos=repos)
    finally:
        store.close()
