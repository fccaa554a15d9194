"""Landing a change wave by wave (``change: {land: per-wave}`` and the plan's ``waves:``).

The landing rule is judged once, on the whole change, before the first wave
(:meth:`coordination.change.landing.Lander.prepare`): verification is all or
nothing, so one repo's verify failing blocks every wave. Then each wave of the
manifest (``waves``: name, repos in landing order, soak) in turn:

1. its repos land in dependency order, pushed as ``land: push`` does, all or none
   within the wave (a step that fails reverts the wave's repos landed before it);
2. it soaks: the landing waits the wave's ``soak:`` before the next wave starts
   (none after the last wave). A wave's ``require:`` (a sweep's success rate) is
   not a landing's criterion: a wave has landed when every repo of it did.

A wave whose landing stops (and is reverted) stops the landing there: the waves
before it stay landed (they soaked fine) and the change ends ``partially_landed``
(nothing before it: ``reverted``; its revert failing: ``revert_failed``), the
reason naming the wave, why it stopped, and the repos left landed.
``coord change revert`` takes the landed waves out.

**Resume**: the manifest records the waves and each repo's step is recorded as
in any landing, so a killed landing carries on: the waves whose repos all landed
are skipped, the wave under way goes on from its steps (or its undo, when one was
under way). A landing killed while a wave soaked soaks it again, whole (the soak
is not recorded: waiting longer is the safe side).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from coordination.runtime.changes import ChangeState, ChangeStore
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.status import StepState
from coordination.status import EventKind

#: How often a soak looks at the clock (seconds).
SOAK_TICK = 0.2

#: A wave's state in the outcome besides landed / reverted / revert_failed: never started.
NOT_STARTED = "not_landed"


class Steps(Protocol):
    """What a wave is landed with: the lander's steps (coordination.change.landing)."""

    rt: Runtime
    store: ChangeStore
    fault: Callable[[str, str], None]

    def land_in_order(self, m: Any, repos: list[str], st: ChangeState) -> str | None:
        """Land each of ``repos`` not landed yet (as ``st`` says), in turn; the first
        failure, else None."""

    def revert_repos(self, m: Any, repos: set[str], reason: str) -> tuple[list[str], list[str]]:
        """Put back those of ``repos`` that landed: ``(reverted, left landed)``."""


@dataclass
class Ended:
    """How a per-wave landing ended: ``state`` (landed, partially_landed, reverted,
    revert_failed), why, the repos left landed and reverted, each wave's state."""

    state: str
    reason: str | None
    left_landed: list[str]
    reverted: list[str] = field(default_factory=list)
    waves: list[dict[str, Any]] = field(default_factory=list)


def commit_waves(ld: Steps, m: Mapping[str, Any]) -> Ended:
    """Land the manifest ``m`` (prepared, with ``waves``) wave by wave."""
    plan = m["plan"]
    waves: list[dict[str, Any]] = list(m.get("waves") or [])
    order = [e["repo"] for e in m["repos"]]
    st = ld.store.read(plan)
    if st.reason:  # the undo of a wave was under way: the first wave not wholly landed
        k = next((i for i, w in enumerate(waves) if not _all_landed(st, w)), 0)
        return _stop(ld, m, k, st.reason)
    if not any(s.state for s in st.steps.values()):
        ld.rt.events.emit(EventKind.change_landing, plan=plan, order=order)
    for k, w in enumerate(waves):
        st = ld.store.read(plan)
        nxt = waves[k + 1] if k + 1 < len(waves) else None
        if _all_landed(st, w):
            # Landed before a kill: soaked too, unless the next wave never started.
            if nxt is not None and all(st.step(r).empty for r in nxt["repos"]):
                _soak(ld, plan, k, w)
            continue
        ld.rt.events.emit(EventKind.change_wave_landing, plan=plan, wave=w["name"], index=k,
                          repos=w["repos"])
        failure = ld.land_in_order(m, w["repos"], st)
        if failure:
            ld.store.end_landing(plan, CS.landing, failure)  # undo under way: resumable
            return _stop(ld, m, k, failure)
        ld.rt.events.emit(EventKind.change_wave_landed, plan=plan, wave=w["name"], index=k,
                          repos=w["repos"])
        if nxt is not None:
            _soak(ld, plan, k, w)
    ld.store.end_landing(plan, CS.landed, None, ld.rt.events.prepare(
        EventKind.change_landed, plan=plan, order=order))
    return Ended(CS.landed, None, order, waves=[_wave_doc(w, CS.landed) for w in waves])


def _all_landed(st: ChangeState, w: Mapping[str, Any]) -> bool:
    return all(st.step(r).state == StepState.landed for r in w["repos"])


def _soak(ld: Steps, plan: str, k: int, w: Mapping[str, Any]) -> None:
    """Wait the wave's soak (the next wave starts after it)."""
    soak = float(w.get("soak") or 0.0)
    if soak <= 0:
        return
    until = time.time() + soak
    ld.rt.events.emit(EventKind.change_wave_soaking, plan=plan, wave=w["name"], index=k,
                      until=until)
    ld.fault("soaking", w["name"])
    while (left := until - time.time()) > 0:
        time.sleep(min(SOAK_TICK, left))


def _stop(ld: Steps, m: Mapping[str, Any], k: int, failure: str) -> Ended:
    """Wave ``k`` stopped at ``failure``: revert its repos that landed; the waves
    before it stay landed. The change ends partially_landed, reverted (no wave
    before it) or revert_failed (the wave's revert failed)."""
    plan, waves = m["plan"], list(m.get("waves") or [])
    w = waves[k]
    reverted, left = ld.revert_repos(m, set(w["repos"]), failure)
    earlier = [r for x in waves[:k] for r in x["repos"]]
    said = f"wave {w['name']} ({k + 1} of {len(waves)}) stopped: {failure}"
    if left:
        state = CS.revert_failed
        why = f"{said}; revert failed, left landed: {', '.join(left)}"
    elif earlier:
        state = CS.partially_landed
        why = f"{said}; the wave reverted"
    else:
        state = CS.reverted
        why = said
    if earlier:
        why += (f"; landed (waves {', '.join(x['name'] for x in waves[:k])}): "
                f"{', '.join(earlier)} (coord change revert {plan} takes them out)")
    still = earlier + left
    ld.store.end_landing(plan, state, why, ld.rt.events.prepare(
        EventKind.change_reverted, plan=plan, reason=why, state=state, left_landed=still,
        wave=w["name"]))
    docs = [_wave_doc(x, CS.landed) for x in waves[:k]]
    docs.append(_wave_doc(w, CS.revert_failed if left else CS.reverted))
    docs += [_wave_doc(x, NOT_STARTED) for x in waves[k + 1:]]
    return Ended(state, why, still, reverted, docs)


def _wave_doc(w: Mapping[str, Any], state: str) -> dict[str, Any]:
    return {"name": w["name"], "repos": list(w["repos"]), "state": state}
