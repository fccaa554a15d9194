""""No todo of the plan's last run failed", on evidence that cannot be skipped.

Every todo the plan's last sweep ran (its frozen spec's todos, whether the catalog still
has them or not; and the catalog's todos it has a checkpoint of), but its verify todos
and gates (their verify records and sealed decisions say for them):

- one that failed blocks (``run``), naming it;
- one that ended otherwise counts only with its outcome sealed by whoever ended it
  (:func:`coordination.trust.evidence.outcome_refusal`: status, exit code, run), in
  the last run that dispatched it (the spec says which:
  :func:`coordination.trust.evidence.last_dispatch`) or a later one, never an earlier
  one put back (``evidence``);
- one the sweep ran that has not ended: while the sweep is live, one blocker says the
  sweep is still running and which; once it ended, each blocks (``run``), naming it: a
  failure rewritten to ``pending`` is not an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordination.change.blockers import Blocker, listed
from coordination.change.landing_evidence import FrozenSpec, run_no
from coordination.change.model import ChangePlan
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import SWEEP_LIVE, TERMINAL, TodoStatus
from coordination.trust import evidence
from coordination.trust.signing import Policy

#: Statuses of a todo of the last sweep that block the landing (the run failed).
RUN_FAILED = frozenset({TodoStatus.failed, TodoStatus.compensation_failed})


def run_blockers(cp: ChangePlan, sweep: str, rec: Mapping[str, Any],
                 spec: FrozenSpec | None, last: dict[str, Checkpoint],
                 policy: Policy) -> list[Blocker]:
    """The blockers of the plan's last run (see the module): ``rec``, the sweep's
    fields; ``spec``, its last run's frozen spec; ``last``, its todos' checkpoints."""
    ran: dict[str, Any] = spec.todos if spec else {}
    skip = {*cp.verify_todos, *cp.gates,
            *(t for t, d in ran.items() if isinstance(d, dict) and d.get("gate"))}
    run = run_no(rec)
    state = str(rec.get("status") or "")
    out: list[Blocker] = []
    waiting: list[str] = []
    for todo in sorted(t for t in {*ran, *cp.todos} if t not in skip):
        c = last.get(todo)
        status = str(c.get("status")) if c else "no checkpoint"
        if status in RUN_FAILED:
            out.append(_failed(cp, sweep, todo, status, c))
            continue
        if c and status in TERMINAL:
            why = evidence.outcome_refusal(policy, sweep, todo, c, run,
                                           spec.last_run(todo, run) if spec else None)
            if why:
                out.append(Blocker("evidence", todo, f"{why}: whether it failed cannot be "
                                   f"told; run it again (coord sweep resume {sweep} --only "
                                   f"{todo}), or sweep the plan again (coord plan sweep "
                                   f"{cp.plan} --again)"))
            continue
        if todo not in ran:
            continue  # (in the catalog since the sweep froze the plan: it never ran there)
        if state in SWEEP_LIVE:
            waiting.append(f"{todo} is {status}")
            continue
        out.append(Blocker("run", todo, (
            f"{todo} is {status} in the plan's last sweep {sweep}, which ended "
            f"{state or '(no status)'}: it has no outcome of the sweep's last run (its "
            "checkpoint was rewritten, or lost), so whether it failed cannot be told; run "
            f"it again (coord sweep resume {sweep} --only {todo})")))
    if waiting:
        doing = {"paused": "paused", "rolling_back": "rolling back"}.get(state, "running")
        out.append(Blocker("run", cp.plan, (
            f"the plan's last sweep {sweep} is still {doing} ({listed(waiting)}): wait for "
            f"it to end (coord sweep watch {sweep})")))
    return out


def _failed(cp: ChangePlan, sweep: str, todo: str, status: str, c: Checkpoint | None
            ) -> Blocker:
    """A todo of the plan's last sweep that failed, and what to run next."""
    reason = c.get("reason") if c else None
    said = f"{todo} {status} in the plan's last sweep {sweep}" + (
        f" ({reason})" if reason else "")
    return Blocker("run", todo, said + (
        f": coord sweep resume {sweep}" if todo in cp.todos else
        f" and is no longer a todo of {cp.plan} in the catalog: the last run of "
        f"the plan failed; sweep the plan again (coord plan sweep {cp.plan})"))
