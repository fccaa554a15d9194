"""What the landing rule reads, read once before any of its checks runs.

:func:`gather` reads it (Prefect's orchestration context): the change as Redis holds
it, the candidate set judged, the plan's sweep pointer if its seal holds, and the plan's
last sweep: its fields, its todos' checkpoints, and its last run's spec
(:class:`FrozenSpec`, parsed once, its signature checked). The checks
(:mod:`coordination.change.rule`) read it; none writes Redis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordination.change import git as g
from coordination.change import standing
from coordination.change.model import ChangePlan
from coordination.runtime.change_records import SweepPointer
from coordination.runtime.changes import ChangeState, pointer_about
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.context import Runtime
from coordination.trust import evidence, signing
from coordination.trust.evidence import EvidenceKind
from coordination.trust.approvers import START_FIELDS
from coordination.trust.signing import Policy

if TYPE_CHECKING:
    from coordination.change.forge_status import PullView


@dataclass(frozen=True)
class FrozenSpec:
    """A sweep's spec as its last run froze it (its signed JSON, parsed once): what the
    landing rule reads of it."""

    #: the plan it swept, as stored (what the spec digest is of)
    plan: Any
    #: "rollback": its todos run their undo commands, not what a gate approved
    mode: Any
    #: todo -> its frozen spec (a JSON object; anything else is no todo the rule reads)
    todos: dict[str, Any]
    #: the todos this run dispatched, and the last run that dispatched each, as stored
    levels: Any = None
    dispatched: Any = None

    @classmethod
    def from_json(cls, text: str) -> FrozenSpec | None:
        """None: no JSON object with its todos."""
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("todos"), dict):
            return None
        return cls(doc.get("plan"), doc.get("mode"), doc["todos"], doc.get("levels"),
                   doc.get("dispatched"))

    @property
    def rollback(self) -> bool:
        return str(self.mode) == "rollback"

    def todo(self, todo_id: str) -> dict[str, Any]:
        """``todo_id``'s frozen spec ({}: none)."""
        t = self.todos.get(todo_id)
        return t if isinstance(t, dict) else {}

    @cached_property
    def digest(self) -> str:
        """What its todos run (:func:`coordination.trust.evidence.spec_digest_of`)."""
        return evidence.spec_digest_of(self.plan, {
            t: d for t, d in self.todos.items() if isinstance(d, dict)})

    @cached_property
    def dispatched_now(self) -> frozenset[str]:
        return evidence.dispatched_now(self.levels)

    def last_run(self, todo_id: str, run: int) -> int:
        """The last run (of a sweep at run ``run``) that dispatched ``todo_id``."""
        return evidence.last_dispatch(todo_id, run, self.dispatched_now, self.dispatched)


@dataclass
class Evidence:
    """What the landing rule reads: the change, the candidate set judged, the trusted
    sweep pointer, and the plan's last sweep as Redis holds it."""

    rt: Runtime
    cp: ChangePlan
    st: ChangeState
    now: dict[str, str | None]  # every repo's candidate (None: none yet)
    bases: Mapping[str, standing.Base] | None
    remotes: bool
    policy: Policy
    pointer: SweepPointer  # the sweep pointer if it may be trusted, else an empty one
    refused_pointer: str | None  # why it may not
    sweep: str | None  # the plan's last sweep, as the pointer names it
    #: the set judged, when every repo has a candidate (else None)
    cands: dict[str, str] | None = None
    rec: dict[str, Any] = field(default_factory=dict)  # the sweep's fields read
    gone: bool = False  # the sweep is gone from Redis
    since: float = 0.0  # when the sweep was created
    spec: FrozenSpec | None = None  # its last run's frozen spec (signature checked)
    unreadable: str | None = None  # why that spec cannot be read
    last: dict[str, Checkpoint] = field(default_factory=dict)  # its todos' checkpoints
    #: ``land: pr``: each repo's pull request as its forge says it (None: not read, and
    #: the forge is not judged: a change that lands otherwise, or a caller judging only
    #: its verification)
    pulls: Mapping[str, PullView] | None = None
    #: git may run (False: a reader that runs none, the web view for a stranger: what
    #: only git can tell is left out, never guessed)
    git: bool = True

    @property
    def run(self) -> int:
        """The run the sweep is at."""
        return run_no(self.rec)


def current_candidates(cp: ChangePlan, st: ChangeState) -> dict[str, str | None]:
    """Every repo's candidate now: the HEAD of its change worktree, re-read (None: no
    candidate yet, or its worktree is gone)."""
    out: dict[str, str | None] = {}
    for repo in cp.targets:
        rec = st.repos.get(repo)
        if rec is None or not rec.worktree or not Path(rec.worktree).is_dir():
            out[repo] = None
            continue
        try:
            out[repo] = g.read_head(rec.worktree)  # its files: no git process per repo
        except g.GitError:
            out[repo] = None
    return out


def gather(rt: Runtime, cp: ChangePlan, st: ChangeState, now: dict[str, str | None],
           bases: Mapping[str, standing.Base] | None, remotes: bool,
           pulls: Mapping[str, PullView] | None = None, git: bool = True) -> Evidence:
    """The evidence the landing rule judges ``cp`` on, with ``now`` its candidate set."""
    policy = evidence.policy_of(rt.settings)
    pointer, refused = trusted_pointer(cp, st, policy)
    complete = all(now.values()) and bool(now)
    ev = Evidence(rt, cp, st, now, bases, remotes, policy, pointer, refused, pointer.sweep,
                  {r: s for r, s in now.items() if s} if complete else None, git=git)
    ev.pulls = pulls
    if ev.sweep:
        _read_sweep(ev, ev.sweep)
    return ev


def _read_sweep(ev: Evidence, sweep: str) -> None:
    """The plan's last sweep into ``ev``: its fields, its spec, its todos' checkpoints
    (its spec's todos always: which todos it ran, deleted from the catalog since or not)."""
    wanted = ("created_at", "run", "status", *START_FIELDS, "spec", "spec_sig", "spec_key_id")
    found = ev.rt.checkpoints.get_sweep_fields(sweep, wanted)
    ev.gone = found is None
    ev.rec = dict(found or {})
    ev.since = float(str(ev.rec.get("created_at") or 0))
    if not ev.gone:
        ev.spec, ev.unreadable = frozen_spec(sweep, ev.rec, ev.policy)
    cp = ev.cp
    ids = sorted({*cp.verify_todos, *cp.gates, *cp.todos, *(ev.spec.todos if ev.spec else {})})
    ev.last = ev.rt.checkpoints.get_all(sweep, ids) if ids and not ev.gone else {}


def trusted_pointer(cp: ChangePlan, st: ChangeState, policy: Policy
                    ) -> tuple[SweepPointer, str | None]:
    """The plan's sweep pointer if it may be trusted (else an empty one), and why not."""
    p = st.pointer
    if p is None:
        return SweepPointer.of({}), None
    what = (f"sweep pointer of change {cp.plan} (its field sweep, naming sweep "
            f"{p.document.get('sweep')})")
    why = evidence.refusal(EvidenceKind.sweep, pointer_about(cp.plan), p.document, policy, what)
    if why:
        return SweepPointer.of({}), (
            f"{why}; no sweep of the plan is taken for its last: sweep the plan again "
            f"(coord plan sweep {cp.plan})")
    return p, None


def frozen_spec(sweep: str, rec: Mapping[str, Any], policy: Policy
                ) -> tuple[FrozenSpec | None, str | None]:
    """The sweep's spec as its last run froze it (its stored JSON, its signature checked
    for that run), or why it cannot be read."""
    text = rec.get("spec")
    run = rec.get("run")
    try:
        run_of_spec = int(run or 0)
    except (TypeError, ValueError):
        run_of_spec = -1
    why = signing.refusal(sweep, run_of_spec, text, rec.get("spec_sig"), rec.get("spec_key_id"),
                          policy)
    if why is None and isinstance(text, str):
        spec = FrozenSpec.from_json(text)
        if spec is not None:
            return spec, None
        why = "spec unreadable"
    return None, f"the spec of the plan's last sweep {sweep}: {why or 'none'}"


def run_no(rec: Mapping[str, Any]) -> int:
    """The run a sweep's fields say it is at (0: they do not say)."""
    try:
        return int(str(rec.get("run") or 0))
    except ValueError:
        return 0
