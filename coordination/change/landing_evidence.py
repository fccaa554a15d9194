"""What the landing rule reads, read once before any of its checks runs.

:func:`gather` reads it (Prefect's orchestration context): the change as Redis holds
it, the candidate set judged, the plan's sweep pointer if its seal holds, and the plan's
last sweep: its fields, its todos' checkpoints, and its last run's spec
(:class:`FrozenSpec`, parsed once, its signature checked); and every other fact the
checks judge that git, Redis or a file holds: the newest freshness anchor outside Redis
(which writes the one beside the catalog when a remote's is newer), each repo's own git
config and where its base stands, the checkpoints of verify todos run outside the last
sweep, each approved gate's votes and who started the sweep. The checks
(:mod:`coordination.change.rule`) are a pure policy over it: none runs git, reads or
writes Redis or a file (a test runs them with ``rt`` and git raising).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordination.change import anchor
from coordination.change import git as g
from coordination.change import standing
from coordination.change.model import ChangePlan
from coordination.runtime.change_records import SweepPointer
from coordination.runtime.changes import ChangeState, pointer_about
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.context import Runtime
from coordination.trust import evidence, signing
from coordination.trust.evidence import EvidenceKind
from coordination.status import TodoStatus
from coordination.errors import CoordError
from coordination.trust.approvers import (
    START_FIELDS,
    Approvers,
    Starter,
    ssh_proofs,
    starter_of,
    votes_of,
)
from coordination.trust.sshsig import Proof
from coordination.trust.signing import Policy

if TYPE_CHECKING:
    from coordination.change.pulls.forge_status import PullView


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
    #: the newest freshness anchor outside Redis (None: none anywhere), and why each
    #: one found was refused (read only when the pointer's seal holds)
    fresh_anchor: anchor.Anchor | None = None
    anchors_refused: list[str] = field(default_factory=list)
    #: repo -> why coord runs no git there (its own git config; read only with ``git``)
    untrusted: dict[str, str] = field(default_factory=dict)
    #: repo -> what its base on its remote (``bases``) means for landing it, in
    #: ``land --dry-run``'s words (only repos with a problem)
    base_problems: dict[str, str] = field(default_factory=dict)
    #: sweep -> the checkpoints of the verify todos the pointer says last started in a
    #: sweep other than the plan's last (a ``coord todo run`` of one)
    elsewhere: dict[str, dict[str, Checkpoint]] = field(default_factory=dict)
    #: gate -> its votes field as stored (gates that read approved in the last sweep)
    votes: dict[str, str] = field(default_factory=dict)
    #: who proves approvers (the allowed-signers file), and who started the last sweep
    signers: Approvers = field(default_factory=lambda: Approvers(None))
    started: Starter | None = None
    #: gate -> its votes' SSH signatures, checked (with an allowed-signers file)
    proofs: dict[str, dict[tuple[str, str], Proof | str | CoordError]] = field(
        default_factory=dict)

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
    if not refused:
        ev.fresh_anchor, ev.anchors_refused = newest_anchor(rt, cp, policy, remotes=remotes)
    if git:
        ev.untrusted = untrusted_git(cp, st)
    ev.base_problems = base_problems(cp, st, now, bases)
    ev.elsewhere = _checkpoints_elsewhere(ev)
    _read_gates(ev)
    return ev


def newest_anchor(rt: Runtime, cp: ChangePlan, policy: Policy, *, remotes: bool
                  ) -> tuple[anchor.Anchor | None, list[str]]:
    """The newest freshness anchor found outside Redis (beside the catalog; with
    ``remotes``, on each repo's remote too: a newer one there is written beside the
    catalog), and why each refused one was (:func:`coordination.change.anchor.newest`)."""
    repos = {r: (t.checkout, t.remote) for r, t in cp.targets.items()}
    if remotes:
        repos = anchor.on_catalog_url(cp.plan, repos,
                                      {r: t.url for r, t in cp.targets.items()})
    return anchor.newest(cp.base_dir, repos, rt.keys.namespace, cp.plan, policy,
                         remotes=remotes)


def untrusted_git(cp: ChangePlan, st: ChangeState) -> dict[str, str]:
    """Repos whose own git config (the checkout's, the worktree's: a todo can write
    them) makes git run a program (unless the repo says ``land_hooks: true``), or whose
    remote there is not the catalog's ``url:``: repo -> why (without its name)."""
    out: dict[str, str] = {}
    for repo, t in cp.targets.items():
        rec = st.repos.get(repo)
        if rec is None:
            continue
        dirs = [d for d in (t.checkout, rec.worktree) if d and Path(d).is_dir()]
        why = g.untrusted_git(repo, t.checkout, *dirs, remote=t.remote, url=t.url,
                              trusted=t.land_hooks)
        if why:
            out[repo] = why.removeprefix(f"{repo}: ")
    return out


def base_problems(cp: ChangePlan, st: ChangeState, now: Mapping[str, str | None],
                  bases: Mapping[str, standing.Base] | None) -> dict[str, str]:
    """repo -> what its base as ``bases`` read it now means for landing its candidate
    (moved, gone, the candidate already: :func:`standing.base_problem`, asking git
    whether a moved base is in the candidate); a repo whose base was not checked, with
    no record or candidate, or in conflict: none said."""
    out: dict[str, str] = {}
    for repo, base in (bases or {}).items():
        rec, cand = st.repos.get(repo), now.get(repo)
        if not base.checked or rec is None or cand is None or repo in st.conflicts:
            continue
        problem, _ = standing.base_problem(repo, cp.targets[repo], rec, cand, base.sha)
        if problem:
            out[repo] = problem.removeprefix(f"{repo}: ")
    return out


def _checkpoints_elsewhere(ev: Evidence) -> dict[str, dict[str, Checkpoint]]:
    """sweep -> the checkpoints of the verify todos the pointer says last started in a
    sweep other than the plan's last (a ``coord todo run`` of one)."""
    wanted: dict[str, list[str]] = {}
    for t in ev.cp.verify_todos:
        a = ev.pointer.started_in(t)
        if a is not None and a[0] != ev.sweep:
            wanted.setdefault(a[0], []).append(t)
    return {s: ev.rt.checkpoints.get_all(s, ts) for s, ts in sorted(wanted.items())}


def _read_gates(ev: Evidence) -> None:
    """The gates' facts into ``ev``: who proves approvers (the allowed-signers file,
    its principals read), who started the last sweep (its start's signature checked),
    and the votes of each gate that reads approved in it."""
    cp, sweep = ev.cp, ev.sweep
    ev.signers = Approvers(Path(cp.allowed_signers) if cp.allowed_signers else None)
    if not cp.gates:
        return
    if ev.signers.allowed is not None:
        ev.signers.principals()  # (read now: a check reads no file)
    ev.started = starter_of(ev.rec, sweep or "", ev.signers)
    for gate in cp.gates:
        if sweep and not ev.gone and \
                (ev.last.get(gate) or {}).get("status") == TodoStatus.succeeded:
            ev.votes[gate] = votes = ev.rt.checkpoints.gate_read(sweep, gate)[1]
            binding = str(ev.last[gate].get("binding") or "")
            ev.proofs[gate] = ssh_proofs(sweep, gate, cp.gate_specs.get(gate) or {}, binding,
                                         votes_of(votes), ev.signers)


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
