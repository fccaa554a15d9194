"""Whether the run a context value names still stands: what binds a todo's value to its run.

A todo's context value is sealed with its run's key and names that run
(:mod:`coordination.runtime.shared_context`, ``by``). The seal shows which run set it;
whether that run's values still count is the sweep's to say, from its signed spec (never
from a checkpoint, which anyone with Redis can write):

- the sweep's spec must pass its check, run that todo, and be of the plan the value names;
- the value's run must be no later than the sweep's, and no earlier than the last run
  that dispatched the todo (:func:`coordination.trust.evidence.run_window_refusal`): a
  value set before its todo ran again (a resume, ``--again``) is an older sealed value put
  back over the newer one's place, and is refused.

A sweep whose record is gone from Redis (past its retention, or deleted by a writer) is
refused: with its spec gone nothing says which of its runs stand, and deleting a sweep's
record is what a keyless writer would do to have an older sealed value taken again. A
value set outside a todo (``coord context set`` by an operator, no ``by``) is not bound
to a run and is not asked about here: put back, it is taken as sealed (documented).
"""

from __future__ import annotations

from coordination.runtime.context import Runtime
from coordination.runtime.shared_context import RunCheck
from coordination.sweeps.spec_store import load_checked, policy
from coordination.trust.evidence import run_window_refusal
from coordination.trust.runkeys import RunId


def run_check(rt: Runtime) -> RunCheck:
    """The check :class:`~coordination.runtime.shared_context.ContextStore` asks of each
    value a todo set (``rt``: where its sweep is read)."""
    pol = policy(rt)

    def check(rid: RunId, what: str) -> str | None:
        checked = load_checked(rt, rid.sweep)
        if checked is None:  # (fail closed: nothing left says whether that run stands)
            return (f"{what}: set by {rid}, but that sweep's record is gone from Redis "
                    "(expired, or deleted): nothing says whether its run still stands; "
                    "set the value again")
        if checked.refusal is not None and (pol.keys or pol.require_signed):
            return (f"{what}: set by {rid}, but that sweep's spec fails its check "
                    f"({checked.refusal})")
        spec = checked.spec
        if spec is None:
            return f"{what}: set by {rid}, whose sweep's spec cannot be read"
        if spec.plan != rid.plan or rid.todo not in spec.todos:
            return (f"{what}: set by {rid}, which its sweep (of plan {spec.plan}) does not "
                    "run: the value names a run that never was")
        return run_window_refusal(what, rid.run, spec.run, spec.last_run(rid.todo))

    return check
