"""What people decide on gates, and a gate nobody decided in time.

``coord approve`` / ``coord reject`` and the web view's buttons call :func:`decide`:
the checks that need no race (is it a gate, is it waiting, may this person decide:
``from:``, ``starter_may_approve``) are made here and refused with a clear error
(exit 2). Then the vote is made and recorded:

- every vote is sealed (:func:`coordination.trust.evidence.seal`, kind ``vote``,
  about its sweep, gate, binding and approver) with ``COORD_SIGNING_KEY``, so a
  vote written into Redis by anyone without the key never counts;
- with the catalog's ``approvers: {allowed_signers: FILE}``, a vote also carries an
  SSH signature over its binding message (:mod:`.sshsig`), made here with the key
  ``COORD_APPROVE_KEY`` names (else the ssh-agent's), and counts only for a key the
  file gives a principal of the gate's ``from:``; one key is one approver whatever
  names it claims, and ``starter_may_approve: false`` compares the *proven*
  principals and key with the starter's: the key that signed the sweep's start
  (:class:`~coordination.trust.approvers.Starter`; a start that proves nobody
  leaves no vote counting on such a gate). The web view's votes (``via: web``) are
  the view's, for its signed-in user, who must be a principal of the file; they count only
  sealed. Without the file, who approves is whoever ``COORD_USER`` says (a note
  says so).

Lua cannot check a signature, so the runtime counts the vote with the others, over
the votes that verify (:meth:`~coordination.runtime.gate_count.GateCounter.cast`), and
hands the count to ``lua/gate_decide.lua`` with the votes it was made over: the
script records the vote and passes the gate only if the votes and the binding are
still exactly those (compare-and-set); else it reads, verifies and tries again. So
two approvers at once never both pass or both miss the gate, and a forged or copied
vote is refused by name (who, gate, sweep) in the answer, in the gate's ``refused``
(status) and in the log. A gate that passes ends ``succeeded``, a
rejected one ``failed``, and the progression carries the sweep on from there.

Every decision is in the sweep's events (``gate.approved``, ``gate.rejected``, then
the gate's ``todo.succeeded``/``todo.failed``), in the gate's checkpoint (who
approved, who rejected: the history row of the gate says it) and in the catalog's
audit log (an entry with ``op`` approve or reject, ``who``, and the decision), which
``coord history search`` reads too.

The supervision pass calls :func:`watch_gates`: a gate past its ``expires`` ends
``cancelled`` (``gate.expired``, naming the approvals it had) and cancels its sweep
(``on_expiry: cancel``) or stops and rolls it back (``on_expiry: rollback``); a gate
re-opened with enough verified approvals carried over (a resume whose inputs did
not change) passes, and votes nobody settled are verified (forged ones refused).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime
from coordination.runtime.gate_count import Ballot, Cast
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.transitions import GateDecision
from coordination.status import EventKind, SweepStatus, TodoStatus
from coordination.sweeps.governance import decisions
from coordination.sweeps.progress import (
    Pass,
    after_script,
    end_sweep,
    fail_gate,
    progress,
    stop_run,
)
from coordination.sweeps.reading import record as sweep_record
from coordination.sweeps.spec import GateSpec, Mode, SweepSpec
from coordination.sweeps.spec_store import level_index, load_spec
from coordination.sweeps.governance.votes import Approvers, about, count_of, tally
from coordination.trust import sshsig
from coordination.trust.approvers import START_FIELDS, START_OVER, Starter, starter_of
from coordination.trust.evidence import EvidenceKind, seal

log = logging.getLogger("coord.approvals")

DECISIONS = ("approve", "reject")
SELF_DECLARED = ("approvers are self-declared (COORD_USER, else git's or the OS user): "
                 "set `approvers: {allowed_signers: FILE}` in the catalog so approvals are "
                 "proven by SSH signatures")


class Decision(TypedDict):
    """``coord approve|reject --json``."""

    sweep_id: str
    todo_id: str
    decision: str
    by: str
    comment: str
    status: str  # the gate's status after it: awaiting_approval, succeeded or failed
    approvals: list[str]
    needed: int
    refused: list[str]  # votes on the gate that do not count, and why
    notes: list[str]  # what the approver should know (identities self-declared)


#: Votes a process casts for someone it vouches for, never SSH-signed by them: the web
#: view's for its signed-in user, and a forge's review counted for its reviewer
#: (``gate: {forge_reviews: true}``: :mod:`coordination.sweeps.governance.forge_reviews`). With
#: ``approvers:`` each counts only sealed (COORD_SIGNING_KEY) and for a principal.
UNSIGNED_VIA = ("web", "forge")


def _gate_of(rt: Runtime, sweep_id: str, todo_id: str) -> tuple[SweepSpec, GateSpec]:
    rec = sweep_record(rt, sweep_id)
    spec = load_spec(rt, sweep_id, rec)
    if spec is None or todo_id not in spec.todos:
        raise NotFoundError(f"sweep {sweep_id} has no todo {todo_id!r}",
                            hint=f"see `coord sweep status {sweep_id}`")
    return spec, _gate_in(spec, todo_id)


def _gate_in(spec: SweepSpec, todo_id: str) -> GateSpec:
    gate = spec.todos[todo_id].gate
    if not gate:
        raise UsageError(f"{todo_id} is not a gate: it waits for nobody's approval",
                         hint="only a todo with gate: (and no run:) is approved or rejected")
    return gate


def _waiting(cp: Checkpoint | None, sweep_id: str, todo_id: str) -> Checkpoint:
    status = str((cp or {}).get("status") or TodoStatus.pending)
    if cp is None or status != TodoStatus.awaiting_approval:
        raise _not_waiting(sweep_id, todo_id, status)
    return cp


def _not_waiting(sweep_id: str, todo_id: str, status: str) -> UsageError:
    return UsageError(f"{todo_id} of sweep {sweep_id} is {status}, not awaiting approval",
                      hint="a gate waits once its predecessors succeeded, until it is "
                      "approved, rejected or expires")


@dataclass
class _Voter:
    """Who decides, on which sweep, and what is read once for every gate they decide
    (the starter, how approvers prove who they are)."""

    rt: Runtime
    spec: SweepSpec
    who: str
    decision: str
    comment: str
    via: str
    catalog: Path | None
    found: list[Approvers] = field(default_factory=list)
    started: list[Starter] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sweep_id(self) -> str:
        return self.spec.sweep_id

    def approvers(self) -> Approvers:
        """The sweep's own catalog's ``approvers:`` (not a --file given to this command,
        which could name one without approvers:), read once; checked as a vote needs."""
        if self.found:
            return self.found[0]
        approvers = Approvers.of(self.spec.catalog or self.catalog)
        if not approvers.known:
            raise UsageError(f"the catalog of sweep {self.sweep_id} ({self.spec.catalog or self.catalog}) "
                             "is not readable here, so whether its approvers must sign is unknown",
                             hint="approve where the sweep's catalog is (the machine it was "
                             "started from)")
        self.notes = [] if approvers.allowed is not None else [SELF_DECLARED]
        if approvers.allowed is not None and self.via in UNSIGNED_VIA:
            if self.who not in approvers.principals():
                raise UsageError(f"{self.who} is not a principal of {approvers.allowed}: with "
                                 "approvers:, only its principals approve",
                                 hint=f"add {self.who}'s SSH key to {approvers.allowed}")
            if not self.rt.settings.signing_keys:
                raise UsageError("with approvers:, the web view's votes count only sealed, and "
                                 "this view has no COORD_SIGNING_KEY",
                                 hint="serve `coord ui` with COORD_SIGNING_KEY, or approve with "
                                 "`coord approve` and COORD_APPROVE_KEY")
        self.found.append(approvers)
        return approvers

    def starter(self) -> Starter:
        """Who started the sweep, read once: the name it gave, or with approvers: the
        key that signed its start (:func:`coordination.trust.approvers.starter_of`)."""
        if not self.started:
            fields = self.rt.checkpoints.get_sweep_fields(self.sweep_id, START_FIELDS)
            self.started.append(starter_of(fields, self.sweep_id, self.approvers()))
        return self.started[0]


def _voter(rt: Runtime, spec: SweepSpec, *, who: str, decision: str, comment: str,
           catalog: Path | None, via: str) -> _Voter:
    if decision not in DECISIONS:
        raise UsageError(f"unknown decision {decision!r}", hint="approve or reject")
    who = who.strip()
    if not who:
        raise UsageError("who decides is unknown", hint="set COORD_USER")
    return _Voter(rt, spec, who, decision, comment, via, catalog)


def decide(rt: Runtime, sweep_id: str, todo_id: str, *, who: str, decision: str,
           comment: str = "", catalog: Path | None = None, via: str = "") -> Decision:
    """``who`` approves or rejects the gate ``todo_id`` of ``sweep_id`` (see the module
    docstring); ``catalog``: whose audit log records it (when the file exists), and
    whose ``approvers:`` say how approvers prove who they are; ``via``: ``web`` for
    the web view's votes (made by the view for its signed-in user)."""
    if decision not in DECISIONS:
        raise UsageError(f"unknown decision {decision!r}", hint="approve or reject")
    if not who.strip():
        raise UsageError("who decides is unknown", hint="set COORD_USER")
    spec, _ = _gate_of(rt, sweep_id, todo_id)
    v = _voter(rt, spec, who=who, decision=decision, comment=comment, catalog=catalog, via=via)
    out = _decide_gate(v, todo_id)
    _audit(v, [todo_id], {"sweep_id": sweep_id, "todo_id": todo_id, "decision": decision,
                          "comment": comment, "status": out["status"],
                          "approvals": out["approvals"], "needed": out["needed"],
                          "binding": out["binding"], **({"via": via} if via else {})})
    return _public(out)


class _Decided(Decision):
    binding: str | None


def _public(d: _Decided) -> Decision:
    out = dict(d)
    out.pop("binding", None)
    return out  # type: ignore[return-value]


def _audit(v: _Voter, ids: list[str], decision: dict[str, Any]) -> None:
    """The decision in the catalog's audit log (when the file exists); the decision
    stands (events, checkpoints) if it cannot be written: said in the log."""
    if v.catalog is None or not v.catalog.is_file():
        return
    # lazy: the store and models, for a decision only (a sweep's start imports this
    # module for its start proof, and reads the catalog as a view)
    from coordination.catalog.file.store import CatalogStore

    try:
        CatalogStore(v.catalog).record_decision(who=v.who, op=v.decision, ids=ids,
                                                decision=decision)
    except Exception as exc:  # the decision stands (events, checkpoint): say it
        log.warning("the %s of %s/%s is not in the audit log: %s", v.decision, v.sweep_id,
                    ", ".join(ids[:10]), exc)


def _may_decide(v: _Voter, todo_id: str, gate: GateSpec) -> tuple[Approvers, Starter]:
    """The checks on who decides a gate that need no vote (``from:``, the starter), a
    UsageError saying why not; the approvers and starter they read."""
    who, decision, sweep_id = v.who, v.decision, v.sweep_id
    allowed = list(gate.get("from") or [])
    if allowed and who not in allowed:
        raise UsageError(f"{who} may not {decision} {todo_id}: its approvers are "
                         f"{', '.join(allowed)}",
                         hint="ask one of them, or set COORD_USER to who you are")
    approvers = v.approvers()
    # Who started it: the name it gave, or with approvers: the key that signed its start.
    started_by = v.starter()
    if decision == "approve" and gate.get("starter_may_approve") is False:
        if approvers.allowed is None and started_by.name == who:
            raise UsageError(f"{who} started sweep {sweep_id} and may not approve its gate "
                             f"{todo_id} (starter_may_approve: false)",
                             hint="another approver must")
        if started_by.unproven is not None:
            raise UsageError(f"no approval of {todo_id} can count: sweep {sweep_id}'s starter "
                             f"is unproven ({started_by.unproven}), and the gate says "
                             "starter_may_approve: false",
                             hint="start the sweep again signed by its starter "
                             "(COORD_APPROVE_KEY, or the key in ssh-agent)")
    return approvers, started_by


#: A vote's SSH signature made beforehand, with many (:func:`_sign_all`): the binding
#: it was made for, the signature, the vote's place in the tree it signs.
Signed = tuple[str, str, sshsig.Tree]


def _decide_gate(v: _Voter, todo_id: str, signed: Signed | None = None) -> _Decided:
    """``v`` decides one gate: the checks (waiting, ``from:``, the starter, the
    signature), then the vote counted and recorded by the runtime
    (:meth:`~coordination.runtime.gate_count.GateCounter.cast`: a compare-and-set).
    ``signed``: its signature made beforehand with others', used if the gate's binding
    is still the one it was made for (else it is signed on its own)."""
    rt, sweep_id, who, decision, spec = v.rt, v.sweep_id, v.who, v.decision, v.spec
    gate = _gate_in(spec, todo_id)
    count = count_of(spec, todo_id)
    # The gate, its votes and its predecessors in one read, as of one instant: the
    # binding the vote is signed over is the one of the votes it is counted with.
    facts = rt.checkpoints.count_read(sweep_id, todo_id, count.preds, ())
    cp, raw = _waiting(facts.checkpoint, sweep_id, todo_id), facts.votes
    approvers, started_by = _may_decide(v, todo_id, gate)
    # (computed again from the signed spec, never taken from the checkpoint)
    binding = decisions.binding_over(spec, todo_id, facts.preds)
    rolled = decisions.binding_refusal(sweep_id, todo_id, cp.get("binding"), binding)
    if rolled:
        raise UsageError(rolled, hint=f"resume the sweep to open the gate again under its "
                         f"binding (coord sweep resume {sweep_id} --only {todo_id})")
    vote = _vote(rt, sweep_id, todo_id, binding, who, decision, v.comment, v.via, approvers,
                 gate, started_by,
                 signed=signed if signed is not None and signed[0] == binding else None)
    cast = rt.gates.cast(count, Ballot(who, decision, vote, v.comment), approvers, started_by,
                         binding=binding, raw=raw)
    if cast.decision is None:
        raise _refused(cast, v, todo_id, count.needed)
    return _recorded(v, todo_id, cast.decision, count.level, count.needed, cast.refused)


def _refused(cast: Cast, v: _Voter, todo_id: str, needed: int) -> UsageError:
    """Why ``v``'s ballot on ``todo_id`` was refused (nothing recorded), said to them."""
    who, sweep_id = v.who, v.sweep_id
    if cast.refusal == "already":
        return UsageError(f"{who} approved {todo_id} already ({cast.detail} of {needed}); its "
                          f"{needed} approvals must come from different people",
                          hint="ask another approver")
    if cast.refusal == "not_counted":
        return UsageError(f"{who}'s approval of {todo_id} does not count: {cast.detail}",
                          hint="ask another approver")
    if cast.refusal == "not_waiting":
        return _not_waiting(sweep_id, todo_id, cast.detail)
    if cast.refusal == "reopened":
        return UsageError(f"{todo_id} of sweep {sweep_id} was opened again meanwhile, for "
                          "another binding (what it approves changed)",
                          hint=f"see `coord sweep status {sweep_id}`, then decide again")
    return UsageError(f"{todo_id} of sweep {sweep_id}: the votes kept changing while this "
                      f"{v.decision} was counted", hint="decide again")


def _recorded(v: _Voter, todo_id: str, got: GateDecision, level: int, needed: int,
              refused: list[str]) -> _Decided:
    """What the recorded vote did (refused when the gate or its sweep no longer waits):
    a passed or rejected gate carries the sweep on; the gate's state after it."""
    rt, sweep_id, spec = v.rt, v.sweep_id, v.spec
    if got.verdict == "status":
        raise UsageError(f"{todo_id} of sweep {sweep_id} is {got.detail}, not awaiting "
                         "approval", hint=f"see `coord sweep status {sweep_id}`")
    if got.verdict == "gone":
        raise UsageError(f"sweep {sweep_id} is {got.detail}: its gates wait no more",
                         hint=f"see `coord sweep status {sweep_id}`")
    for why in refused:
        log.warning("sweep %s: %s", sweep_id, why)
    new = TodoStatus.awaiting_approval
    if got.verdict in ("approved", "rejected"):
        new = TodoStatus.succeeded if got.verdict == "approved" else TodoStatus.failed
        # (the gate's decision is sealed, not its outcome: see .decisions)
        after_script(rt, spec, todo_id, new, level=level, level_done=got.level_done,
                     terminal=got.terminal, queued=got.queued)
    after = rt.checkpoints.get(sweep_id, todo_id) or {}
    approvals = [str(u) for u in after.get("approvals") or []]
    return {"sweep_id": sweep_id, "todo_id": todo_id, "decision": v.decision, "by": v.who,
            "comment": v.comment, "status": str(new), "approvals": approvals,
            "needed": needed, "refused": refused, "notes": list(v.notes),
            "binding": None if after.get("binding") is None else str(after.get("binding"))}


class Decisions(TypedDict):
    """``coord approve|reject TEMPLATE --sweep ID --json``: every waiting instance of a
    template decided at once, each on its own gate and binding."""

    sweep_id: str
    todo_id: str  # the template
    decision: str
    by: str
    comment: str
    decided: list[Decision]  # one per instance decided, in the sweep's order
    statuses: dict[str, int]  # the decided gates' statuses after it -> how many
    not_waiting: dict[str, int]  # the other instances' statuses -> how many (not decided)
    failed: dict[str, str]  # instance -> why its vote was refused (the others stand)
    notes: list[str]


def instance_gates(spec: SweepSpec, template_id: str) -> list[str]:
    """The instances ``TODO-010[api]`` of ``template_id`` in a sweep (its order)."""
    prefix = template_id + "["
    return [t for t in spec.todos if t.startswith(prefix) and t.endswith("]")]


def decide_template(rt: Runtime, sweep_id: str, template_id: str, *, who: str,
                    decision: str, comment: str = "", catalog: Path | None = None
                    ) -> Decisions:
    """``who`` approves or rejects every instance of the gate template ``template_id``
    that awaits approval in ``sweep_id``, each as :func:`decide` would: its own
    checks, its own vote bound to its own binding (with ``approvers:``, an SSH
    signature over each binding), counted and recorded by the same compare-and-set.
    One instance refused (its vote would not count, someone decided it meanwhile)
    leaves the others decided: named in ``failed``. One audit entry lists them all."""
    spec = load_spec(rt, sweep_id, sweep_record(rt, sweep_id))
    gates = instance_gates(spec, template_id) if spec is not None else []
    if spec is None or not gates:
        raise NotFoundError(f"sweep {sweep_id} has no todo {template_id!r}, nor instances "
                            f"of a template {template_id}",
                            hint=f"see `coord sweep status {sweep_id}`")
    _gate_in(spec, gates[0])  # (every instance is the template's gate, or none is)
    v = _voter(rt, spec, who=who, decision=decision, comment=comment, catalog=catalog, via="")
    status = {g: str(cp.get("status") or TodoStatus.pending)
              for g, cp in rt.checkpoints.get_fields_all(sweep_id, gates, ()).items()}
    waiting = [g for g in gates if status.get(g) == TodoStatus.awaiting_approval]
    others: dict[str, int] = {}
    for g in gates:
        if g not in waiting:
            st = status.get(g, str(TodoStatus.pending))
            others[st] = others.get(st, 0) + 1
    if not waiting:
        said = ", ".join(f"{n:,} {st}" for st, n in sorted(others.items()))
        raise UsageError(f"no instance of {template_id} awaits approval in sweep {sweep_id} "
                         f"({len(gates):,} instances: {said})",
                         hint="a gate waits once its predecessors succeeded, until it is "
                         "approved, rejected or expires")
    signed = _sign_all(v, waiting)
    decided: list[_Decided] = []
    failed: dict[str, str] = {}
    for g in waiting:
        try:
            decided.append(_decide_gate(v, g, signed.get(g)))
        except UsageError as exc:
            if not decided and not failed and _refuses_everyone(exc):
                raise  # the first says it for all (may not decide, catalog unreadable)
            failed[g] = exc.message
    counts: dict[str, int] = {}
    for d in decided:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    _audit(v, [d["todo_id"] for d in decided] or [template_id], {
        "sweep_id": sweep_id, "todo_id": template_id, "decision": decision,
        "comment": comment, "statuses": counts,
        "instances": {d["todo_id"]: {"status": d["status"], "binding": d["binding"],
                                     "approvals": d["approvals"]} for d in decided},
        **({"failed": failed} if failed else {})})
    return {"sweep_id": sweep_id, "todo_id": template_id, "decision": decision, "by": v.who,
            "comment": comment, "decided": [_public(d) for d in decided], "statuses": counts,
            "not_waiting": others, "failed": failed, "notes": list(v.notes)}


def _sign_all(v: _Voter, gates: list[str]) -> dict[str, Signed]:
    """With ``approvers:``, the votes of ``v`` on every one of ``gates`` signed at once:
    one signature over the tree of their binding messages (:func:`sshsig.sign_many`),
    each vote keeping its own path, so each is still checked on its own, for its own
    binding (none without approvers:). A thousand instances: one ``ssh-keygen``."""
    approvers = v.approvers()
    if approvers.allowed is None or v.via in UNSIGNED_VIA or not gates:
        return {}
    try:  # who may not decide is told so by the first gate, as without this, unsigned
        _may_decide(v, gates[0], _gate_in(v.spec, gates[0]))
    except UsageError:
        return {}
    bindings = decisions.bindings(v.rt, v.spec, [g for g in gates if g in v.spec.todos])
    ids = [g for g in gates if g in bindings]
    if not ids:
        return {}
    signature, trees = sshsig.sign_many(
        [sshsig.binding_message(v.sweep_id, g, bindings[g], v.decision, v.who) for g in ids],
        v.rt.settings.approve_key, who=v.who)
    return {g: (bindings[g], signature, tree) for g, tree in zip(ids, trees)}


def _refuses_everyone(exc: UsageError) -> bool:
    """An error about who decides or where, not about the one gate: said once."""
    text = exc.message
    return (" may not " in text or "is not readable here" in text
            or "would not count" in text or " proves " in text)


def _vote(rt: Runtime, sweep_id: str, todo_id: str, binding: str, who: str, decision: str,
          comment: str, via: str, approvers: Approvers, gate: GateSpec,
          started_by: Starter, *, signed: Signed | None = None) -> dict[str, Any]:
    """``who``'s vote, SSH-signed (with approvers:, not via the web view) and sealed.
    The signature is checked here too, so a key the file does not allow, or one that
    proves the starter, is refused before anything is recorded. ``signed``: its
    signature made with others' (:func:`_sign_all`), for this binding."""
    body: dict[str, Any] = {"d": decision, "b": binding, "at": int(time.time()), "c": comment}
    if via:
        body["via"] = via
    if approvers.allowed is not None and via not in UNSIGNED_VIA:
        message = sshsig.binding_message(sweep_id, todo_id, binding, decision, who)
        if signed is not None:
            body["ssh"], body["tree"] = signed[1], signed[2].to_json()
        else:
            body["ssh"] = sshsig.sign(message, rt.settings.approve_key, who=who)
        allowed_from = [str(u) for u in gate.get("from") or []]
        proof = sshsig.verify_vote(body["ssh"], body.get("tree"), message, approvers.allowed,
                                   allowed_from or None)
        if isinstance(proof, str):
            raise UsageError(f"{who}'s {decision} of {todo_id} would not count: {proof}",
                             hint=f"sign with a key {approvers.allowed} gives {who} "
                             "(COORD_APPROVE_KEY, or ssh-agent)")
        if decision == "approve" and gate.get("starter_may_approve") is False \
                and started_by.refuses("", set(proof.principals), proof.fingerprint):
            same = sorted(set(proof.principals) & set(started_by.principals))
            raise UsageError(f"the key {proof.fingerprint} proves "
                             f"{', '.join(same or proof.principals)}, who started "
                             f"sweep {sweep_id} (its start was signed by key "
                             f"{started_by.key}), and its gate {todo_id} says "
                             "starter_may_approve: false", hint="another approver must")
        if who not in proof.principals:
            raise UsageError(f"the key {proof.fingerprint} proves {', '.join(proof.principals)}"
                             f", not {who}", hint="set COORD_USER to the name your key has in "
                             f"{approvers.allowed}, or sign with {who}'s key")
    return seal(EvidenceKind.vote, about(sweep_id, todo_id, binding, who), body, rt.settings.signing_keys)


def start_proof(rt: Runtime, spec: SweepSpec, sweep_id: str, who: str) -> dict[str, str]:
    """The sweep record fields proving who starts ``sweep_id`` (``who``: the name it is
    started under): with the catalog's ``approvers:`` and a gate in the plan, the
    starter signs the start (:func:`~coordination.trust.sshsig.start_message`) with
    the key ``COORD_APPROVE_KEY`` names, else the ssh-agent's, the same way approvers
    sign their votes; recorded with its key's fingerprint. Then a gate with
    ``starter_may_approve: false`` refuses any vote of that key or of its principals,
    whatever names they claim (:class:`~coordination.trust.approvers.Starter`).

    A starter who cannot sign (no key; a key the allowed-signers file does not name)
    starts a sweep whose gates all let the starter approve, unproven (nothing depends
    on who started it); one with a ``starter_may_approve: false`` gate is refused here
    (exit 2, before anything is recorded): no vote could ever be told from theirs."""
    gates = spec.gates()
    approvers = Approvers.of(spec.catalog) if gates else Approvers(None)
    if approvers.allowed is None:
        return {}
    guarded = [g for g in gates if (gate := spec.todos[g].gate) is not None
               and gate.get("starter_may_approve") is False]
    message = sshsig.start_message(sweep_id, who)
    try:
        signature = sshsig.sign(message, rt.settings.approve_key, who=who,
                                what=f"starting a sweep of {spec.plan} as {who}")
        proof = sshsig.verify(signature, message, approvers.allowed, None, over=START_OVER)
    except UsageError as exc:
        why = exc.message
        proof = None
    else:
        why = proof if isinstance(proof, str) else ""
    if isinstance(proof, sshsig.Proof):
        return {"starter_sig": signature, "starter_key": proof.fingerprint}
    if guarded:
        raise UsageError(
            f"sweep of {spec.plan} not started: its gate{'s' if len(guarded) > 1 else ''} "
            f"{', '.join(guarded)} say{'' if len(guarded) > 1 else 's'} "
            "starter_may_approve: false, and with the catalog's approvers: "
            f"({approvers.allowed}) whoever starts it must prove who they are, by an SSH "
            f"signature of the start: {why}",
            hint="set COORD_APPROVE_KEY to your SSH private key (or add it to ssh-agent); "
            f"its public key must be in {approvers.allowed}")
    log.info("sweep %s starts unproven (%s): no gate of it refuses its starter", sweep_id, why)
    return {}


def refuse_gates(rt: Runtime, spec: SweepSpec, refused: dict[str, str], *, by: str) -> str:
    """Gates read passed on decisions that fail their check (gate -> why: see
    :mod:`.decisions`): each ends ``failed``, then the sweep ``failed`` with the first
    why, ``by`` whom; returns that reason. What has not started is cancelled: nothing
    after them runs."""
    for g, why in sorted(refused.items()):
        fail_gate(rt, spec, g, why)
    first = sorted(refused.items())[0][1]
    reason = f"{first} (refused by {by}): nothing after the gate runs"
    end_sweep(rt, spec.sweep_id, reason)
    return reason


def watch_gates(rt: Runtime, spec: SweepSpec, now: float) -> None:
    """The supervision pass's look at a sweep's waiting gates: settle those whose
    votes changed since they were last counted (pass those whose verified approvals,
    kept from an earlier opening, suffice; refuse forged ones, by name); expire those
    past their ``expires``."""
    gates = spec.gates()
    if not gates or spec.mode != Mode.run:
        return
    cps = rt.checkpoints.get_fields_all(spec.sweep_id, gates, ("expires_at",))
    found: list[Approvers] = []

    def approvers() -> Approvers:  # (the catalog is read only when votes need counting)
        if not found:
            found.append(Approvers.of(spec.catalog))
        return found[0]

    for g, cp in cps.items():
        if cp.get("status") != TodoStatus.awaiting_approval:
            continue
        if settle(rt, spec, g, approvers) == "approved":
            continue
        expires = cp.get("expires_at")
        if expires is not None and now >= float(str(expires)):
            expire(rt, spec, g, now)


def settle(rt: Runtime, spec: SweepSpec, todo_id: str,
           approvers_of: Callable[[], Approvers]) -> str:
    """Count a waiting gate's votes again, verified, if they changed since they were
    last counted (:func:`.votes.tally`); pass it when they suffice, and carry the
    sweep on. Returns the verdict (``""``: nothing to do)."""
    got = tally(rt, spec, todo_id, approvers_of)
    if got is None:
        return ""
    if got.verdict == "approved":
        after_script(rt, spec, todo_id, TodoStatus.succeeded, level=level_index(spec, todo_id),
                     level_done=got.level_done, terminal=got.terminal, queued=got.queued)
    return got.verdict


def expiry_reason(todo_id: str, cp: Checkpoint, needed: int, on_expiry: str) -> str:
    """Why a gate expired, naming the approvals it had (and the votes refused)."""
    had = [str(u) for u in cp.get("approvals") or []]
    text = f"gate {todo_id} expired with {len(had)} of {needed} approvals"
    if had:
        text += ": " + ", ".join(had)
    refused = cp.get("refused") or []
    if refused:
        text += f" ({len(refused)} vote{'s' if len(refused) != 1 else ''} refused)"
    return f"{text} (on_expiry: {on_expiry})"


def expire(rt: Runtime, spec: SweepSpec, todo_id: str, now: float) -> bool:
    """End a gate nobody decided in time: ``cancelled`` with ``gate.expired``, then its
    sweep cancelled or (``on_expiry: rollback``) stopped and rolled back. False if it
    was no longer waiting (decided meanwhile, or expired by another process)."""
    gate = spec.todos[todo_id].gate
    on_expiry = gate["on_expiry"] if gate is not None else "cancel"
    needed = int(gate.get("approvals") or 1) if gate is not None else 1
    why = expiry_reason(todo_id, rt.checkpoints.get(spec.sweep_id, todo_id) or {}, needed,
                        on_expiry)
    p = Pass(rt, spec)
    said = rt.events.prepare(EventKind.gate_expired, sweep_id=spec.sweep_id, todo_id=todo_id,
                             on_expiry=on_expiry, reason=why)
    if not p.end([todo_id], TodoStatus.cancelled,
                 frozenset({TodoStatus.awaiting_approval}), event={"reason": why},
                 cascade=True, said=said):
        return False
    log.warning("sweep %s: %s", spec.sweep_id, why)
    if on_expiry == "rollback":
        stop_run(p, why)
    else:
        # Ended first: the gate's level ending must not send the next one meanwhile.
        end_sweep(rt, spec.sweep_id, why, status=SweepStatus.cancelled)
    progress(rt, spec, p.work, finish=True)
    return True
