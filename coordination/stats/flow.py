"""How work flows, from the history of ended runs: velocity and bottlenecks.

Both are read from the runs :meth:`coordination.runtime.history.HistoryStore.ended`
gives, by :func:`coordination.history.trends.trends` (`coord history trends`, the web
view's ``/trends``).

**Velocity**: todos completed per ISO week (``2026-W47``, the week its run ended it
succeeded, UTC), per repo and per plan. A todo completed twice in one week (two sweeps)
counts once that week. Every week of the window from the first with a completion to
the current one is listed, with 0 where nothing completed, so a chart has no gaps.

**Bottlenecks**: repos by the time todos of *other* repos spent ready but blocked on
theirs. In a run, a todo with predecessors in that run is ready but for its last
predecessor to end from the moment the run started or its other predecessors had all
ended, whichever is later, until that last predecessor ended; that span is charged to
the last predecessor's repo, when it succeeded (it is what unblocked the todo) and its
repo is not the todo's own (a repo waiting on itself is its own business, not a
bottleneck for others). ``wait_s`` is the sum over runs, ``waits`` how many such spans,
``dependents`` the distinct todos that waited, ``worst_s`` the longest span. Runs
recorded before coord 0.5 (no ``blocked_by`` in their rows) count for nothing here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypedDict

from coordination.jsonable import JSONObject, JSONValue

#: A run as :meth:`coordination.runtime.history.HistoryStore.ended` gives it: its sweep
#: row, its todos' rows (dicts of ROW_FIELDS).
Ended = tuple[JSONObject, list[dict[str, JSONValue]]]

SUCCEEDED = "succeeded"
TOP = 10  # repos in bottlenecks


class Velocity(TypedDict):
    """`trends --json`'s ``velocity``: week -> todos completed."""

    weeks: list[str]
    total: dict[str, int]
    repos: dict[str, dict[str, int]]
    plans: dict[str, dict[str, int]]


class Bottleneck(TypedDict):
    """A repo others waited on (``bottlenecks``)."""

    repo: str
    wait_s: float
    waits: int
    dependents: int
    worst_s: float


def week(ts: float) -> str:
    """The ISO week of a UTC instant: ``2026-W47``."""
    year, number, _ = dt.datetime.fromtimestamp(ts, dt.timezone.utc).isocalendar()
    return f"{year}-W{number:02d}"


def _num(value: JSONValue) -> float | None:
    """A time as a record holds it (a number, or its text from a Redis hash); None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def velocity(runs: Sequence[Ended], *, now: float, repos: set[str] | None = None,
             repo: str | None = None) -> Velocity:
    done: dict[str, set[tuple[str, str, str]]] = {}  # week -> {(todo, repo, plan)}
    week_of_day: dict[int, str] = {}  # (a week per day, not per row: rows share days)
    for sweep, rows in runs:
        plan = str(sweep.get("plan") or "")
        for r in rows:
            if r.get("status") != SUCCEEDED:
                continue
            at = _num(r.get("finished_at"))
            where = str(r.get("repo"))
            if at is None:
                continue
            if (repo is not None and where != repo) or (repos is not None and where not in repos):
                continue
            day = int(at // 86400)
            w = week_of_day.get(day)
            if w is None:
                w = week_of_day[day] = week(at)
            done.setdefault(w, set()).add((str(r.get("todo_id")), where, plan))
    if not done:
        return {"weeks": [], "total": {}, "repos": {}, "plans": {}}
    weeks = _weeks(min(done), week(now))
    total = {w: len({t for t, _, _ in done.get(w, ())}) for w in weeks}
    by_repo: dict[str, dict[str, int]] = {}
    by_plan: dict[str, dict[str, int]] = {}
    for w in weeks:
        for _todo, where, plan in done.get(w, ()):
            if where not in by_repo:
                by_repo[where] = dict.fromkeys(weeks, 0)
            by_repo[where][w] += 1
            if plan:
                if plan not in by_plan:
                    by_plan[plan] = dict.fromkeys(weeks, 0)
                by_plan[plan][w] += 1
    return {"weeks": weeks, "total": total, "repos": dict(sorted(by_repo.items())),
            "plans": dict(sorted(by_plan.items()))}


def _weeks(first: str, last: str) -> list[str]:
    """Every ISO week from ``first`` to ``last`` (both given as ``YYYY-Www``)."""
    day = dt.datetime.strptime(first + "-1", "%G-W%V-%u").replace(tzinfo=dt.timezone.utc)
    out = []
    while (w := week(day.timestamp())) <= last:
        out.append(w)
        day += dt.timedelta(days=7)
    return out or [first]


def bottlenecks(runs: Sequence[Ended], *, repos: set[str] | None = None,
                repo: str | None = None) -> list[Bottleneck]:
    """Repos by the time others' todos waited on theirs, most first (see the module)."""
    wait: dict[str, float] = {}
    count: dict[str, int] = {}
    worst: dict[str, float] = {}
    dependents: dict[str, set[str]] = {}
    for sweep, rows in runs:
        by_id = {str(r.get("todo_id")): r for r in rows}
        started = _num(sweep.get("started_at"))
        for r in rows:
            preds = r.get("blocked_by")
            if not isinstance(preds, list):
                continue
            ends = sorted(((end, str(p)) for p in preds if str(p) in by_id
                           and (end := _num(by_id[str(p)].get("finished_at"))) is not None),
                          key=lambda e: e[0])
            if not ends:
                continue
            last_end, last = ends[-1]
            holder = by_id[last]
            blocked_repo, holder_repo = str(r.get("repo")), str(holder.get("repo"))
            if holder.get("status") != SUCCEEDED or holder_repo == blocked_repo:
                continue
            if repo is not None and holder_repo != repo:
                continue
            if repos is not None and holder_repo not in repos:
                continue
            ready = max([t for t in (started, *(e for e, _ in ends[:-1])) if t is not None],
                        default=None)
            if ready is None or last_end <= ready:
                continue
            span = last_end - ready
            wait[holder_repo] = wait.get(holder_repo, 0.0) + span
            count[holder_repo] = count.get(holder_repo, 0) + 1
            worst[holder_repo] = max(worst.get(holder_repo, 0.0), span)
            dependents.setdefault(holder_repo, set()).add(str(r.get("todo_id")))
    out: list[Bottleneck] = [
        {"repo": name, "wait_s": round(total, 3), "waits": count[name],
         "dependents": len(dependents[name]), "worst_s": round(worst[name], 3)}
        for name, total in wait.items()]
    out.sort(key=lambda b: (-b["wait_s"], b["repo"]))
    return out[:TOP]


def recoveries(runs: Sequence[Ended]) -> dict[str, list[float]]:
    """Repo -> how long each of its recoveries took, oldest first (seconds).

    A repo's outcome in a run is *failed* when one of its todos failed there (at the
    first such failure's end), else *succeeded* when one succeeded (at the last one's
    end); a run where none of its todos ran says nothing. A recovery is the time from a
    failed outcome that follows a success (or opens the history) to the repo's next
    succeeded outcome, as a CI pipeline goes from red to green."""
    outcomes: list[tuple[float, int, str]] = []  # (when, 0 failed / 1 succeeded, repo)
    for _sweep, rows in runs:
        failed: dict[str, float] = {}
        ok: dict[str, float] = {}
        for r in rows:
            at = _num(r.get("finished_at"))
            if at is None:
                continue
            repo = str(r.get("repo"))
            if r.get("status") == "failed":
                failed[repo] = min(at, failed.get(repo, at))
            elif r.get("status") == SUCCEEDED:
                ok[repo] = max(at, ok.get(repo, at))
        outcomes.extend((at, 0, repo) for repo, at in failed.items())
        outcomes.extend((at, 1, repo) for repo, at in ok.items() if repo not in failed)
    outcomes.sort()
    since: dict[str, float] = {}
    out: dict[str, list[float]] = {}
    for at, good, repo in outcomes:
        if not good:
            since.setdefault(repo, at)
        elif repo in since:
            out.setdefault(repo, []).append(max(0.0, at - since.pop(repo)))
    return out
