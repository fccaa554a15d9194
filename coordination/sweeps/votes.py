"""A gate's votes: which of them count, and counting them.

A vote is evidence (:mod:`coordination.runtime.evidence`, kind ``vote``): it counts
only if its seal holds, and with the catalog's ``approvers:`` only with an SSH
signature (:mod:`.sshsig`) by a key the allowed-signers file gives one of the gate's
approvers (:func:`verified`). Lua cannot check either, so votes are counted here
and the count is handed to ``lua/gate_decide.lua`` with the votes it was made over
(a compare-and-set: :func:`tally`). :mod:`.approvals` (people deciding, the
supervision's settling) and :mod:`.gates` (a gate opened again with votes carried
over) count through here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coordination.catalog.store import CatalogStore
from coordination.runtime.context import Runtime
from coordination.runtime.evidence import policy_of, refusal, vote_about
from coordination.runtime.signing import Policy
from coordination.runtime.transitions import GateDecision, votes_digest
from coordination.status import TodoStatus
from coordination.sweeps import sshsig
from coordination.sweeps.spec import GateSpec, SweepSpec
from coordination.sweeps.spec_store import level_index

log = logging.getLogger("coord.approvals")

#: Compare-and-set attempts of one count (each failed one means another vote
#: landed meanwhile; that voter counts the gate too, so a few suffice).
ATTEMPTS = 8


class Approvers:
    """Whether approvers prove who they are: ``allowed`` (the allowed-signers file)
    or None (self-declared); ``known`` False when the catalog could not be read (a
    reader then settles nothing: fail closed)."""

    def __init__(self, allowed: Path | None, known: bool = True) -> None:
        self.allowed, self.known = allowed, known
        self._principals: set[str] | None = None

    @classmethod
    def of(cls, catalog: Path | str | None) -> Approvers:
        path = Path(catalog) if catalog else None
        if path is None or not path.is_file():
            return cls(None, known=False)
        try:
            found = CatalogStore(path).load().approvers
        except Exception as exc:  # noqa: BLE001 (whatever it is, nothing is counted)
            log.warning("the catalog %s could not be read for its approvers: %s", path, exc)
            return cls(None, known=False)
        if found is None:
            return cls(None)
        allowed = Path(found.allowed_signers).expanduser()
        return cls(allowed if allowed.is_absolute() else path.resolve().parent / allowed)

    def principals(self) -> set[str]:
        if self._principals is None:
            try:
                self._principals = sshsig.principals(self.allowed) if self.allowed else set()
            except OSError:
                self._principals = set()
        return self._principals


#: What a vote is about (one definition: the landing rule checks votes too).
about = vote_about


def verified(sweep_id: str, todo_id: str, gate: GateSpec, binding: str,
             votes: Mapping[str, Any], *, started_by: str | None, approvers: Approvers,
             policy: Policy) -> tuple[list[str], list[str], dict[str, str]]:
    """Of ``votes`` (person -> vote), the approvals under ``binding`` that count:
    ``(approvers, refusals, why each refused person's vote does not count)``. A vote
    counts when its seal holds (``COORD_SIGNING_KEY``), its person is one of
    ``from:``, with an allowed-signers file its SSH signature verifies for such a
    principal (web votes: the view's seal, a principal of the file), the starter
    is not among who it proves (``starter_may_approve: false``), and no earlier vote
    proved the same person (one key, one principal: one approver)."""
    allowed_from = [str(u) for u in gate.get("from") or []]
    no_starter = gate.get("starter_may_approve") is False
    users: list[str] = []
    refused: dict[str, str] = {}
    seen: dict[str, str] = {}  # identity (key or principal) -> whose vote proved it

    def at(kv: tuple[str, Any]) -> float:  # (the order in which votes were cast)
        v = kv[1]
        try:
            return float(v.get("at") or 0) if isinstance(v, dict) else 0.0
        except (TypeError, ValueError):  # a vote written by hand: last
            return float("inf")

    for who, v in sorted(votes.items(), key=lambda kv: (at(kv), kv[0])):
        if not isinstance(v, dict) or v.get("d") != "approve" or v.get("b") != binding:
            continue  # a rejection ends the gate itself; older bindings' votes are history
        what = f"vote of {who} on gate {todo_id} of sweep {sweep_id}"
        why = refusal("vote", about(sweep_id, todo_id, binding, who), v, policy, what)
        proven: set[str] = {who}
        ids: set[str] = {f"principal {who}"}
        if why is None and allowed_from and who not in allowed_from:
            why = f"{what}: {who} is not one of its approvers ({', '.join(allowed_from)})"
        if why is None and approvers.allowed is not None:
            if v.get("via") == "web":
                if not v.get("sig"):
                    why = (f"{what}: made by the web view without a seal; with approvers: a "
                           "web vote counts only sealed (give `coord ui` COORD_SIGNING_KEY)")
                elif who not in approvers.principals():
                    why = f"{what}: {who} is not a principal of {approvers.allowed}"
            elif not v.get("ssh"):
                why = (f"{what}: no SSH signature, and the catalog's approvers: requires one "
                       f"(allowed signers {approvers.allowed}): approve with COORD_APPROVE_KEY "
                       "naming your SSH key (or with it in ssh-agent)")
            else:
                proof = sshsig.verify(str(v["ssh"]), sshsig.binding_message(
                    sweep_id, todo_id, binding, "approve", who), approvers.allowed,
                    allowed_from or None)
                if isinstance(proof, str):
                    why = f"{what}: {proof}"
                elif who not in proof.principals:
                    why = (f"{what}: its key {proof.fingerprint} proves "
                           f"{', '.join(proof.principals)}, not {who}")
                else:
                    proven = set(proof.principals)
                    ids = {f"key {proof.fingerprint}"} | {f"principal {p}" for p in proven}
        if why is None and no_starter and started_by and started_by in proven:
            why = (f"{what}: proves {started_by}, who started the sweep, and the gate says "
                   "starter_may_approve: false")
        if why is None:
            twin = next((seen[i] for i in sorted(ids) if i in seen), None)
            if twin is not None:
                why = (f"{what}: the same approver as {twin}'s vote (one key, one "
                       "principal: one approver, whatever names it claims)")
        if why is not None:
            refused[who] = why
            continue
        users.append(who)
        seen.update((i, who) for i in ids)
    return users, list(refused.values()), refused


def votes_of(raw: str) -> dict[str, Any]:
    """A gate's votes field (raw JSON) as person -> vote (none if it is not JSON:
    written by hand, nothing in it counts)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def tally(rt: Runtime, spec: SweepSpec, todo_id: str,
          approvers_of: Callable[[], Approvers], *, may_pass: bool = True
          ) -> GateDecision | None:
    """Count a waiting gate's votes again, verified, if they changed since they were
    last counted, and record the count (approvals, refusals) with
    ``lua/gate_decide.lua``, which passes the gate when they suffice; None when there
    was nothing to count. ``may_pass`` False (the sending path, which cannot carry
    the sweep on from a gate): a count that would pass is left to the supervision
    pass. Where the catalog (so whether approvers must prove who they are) is not
    readable, nothing is counted: the next vote, made where it is, settles it."""
    gate = spec.todos[todo_id].gate
    assert gate is not None
    for _ in range(ATTEMPTS):
        cp, raw = rt.checkpoints.gate_read(spec.sweep_id, todo_id)
        if cp is None or cp.get("status") != TodoStatus.awaiting_approval or not raw:
            return None
        if cp.get("settled") == votes_digest(raw):
            return None  # counted as they are (the script records what it counted over)
        approvers = approvers_of()
        if not approvers.known:
            log.warning("sweep %s: gate %s has votes not yet counted, and its catalog %s is "
                        "not readable here to say how approvers prove who they are: left "
                        "for a process that has it", spec.sweep_id, todo_id, spec.catalog)
            return None
        binding = str(cp.get("binding") or "")
        started_by = (rt.checkpoints.get_sweep_fields(spec.sweep_id, ("started_by",))
                      or {}).get("started_by")
        users, refused, _ = verified(spec.sweep_id, todo_id, gate, binding, votes_of(raw),
                                     started_by=started_by, approvers=approvers,
                                     policy=policy_of(rt.settings))
        if not may_pass and len(users) >= int(gate.get("approvals") or 1):
            return None
        level = level_index(spec, todo_id)
        t = spec.todos[todo_id]
        succs = ([(s, spec.todos[s].queue) for s in t.succs if s in spec.todos]
                 if spec.strategy == "eager" and not spec.waves else [])
        got = rt.transitions.decide_gate(spec.sweep_id, todo_id, who="", decision="approve",
                                         binding=binding, seen=raw, counted=users,
                                         refused=refused, level=level, successors=succs)
        if got.verdict == "changed":
            continue
        for why in refused:
            log.warning("sweep %s: %s", spec.sweep_id, why)
        return got
    return None
