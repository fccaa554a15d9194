"""Which of a gate's votes count: the checks every reader of votes makes.

A vote is evidence (:mod:`coordination.runtime.evidence`, kind ``vote``): it counts
only if its seal holds, its person is one of the gate's ``from:``, and, with the
catalog's ``approvers:``, only with an SSH signature (:mod:`.sshsig`) by a key the
allowed-signers file gives one of the gate's approvers; the starter does not count
where the gate says ``starter_may_approve: false``; one key is one approver
(:func:`verified`).

Two readers: the count that passes a gate (:mod:`coordination.sweeps.votes`) and the
landing rule (:mod:`coordination.change.rule`), which checks again, on every
landing, the votes behind a gate that reads approved: its status and approvals are
plain fields a writer without the key could set, the votes' seals and signatures
are not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coordination.catalog.store import CatalogStore
from coordination.runtime import sshsig
from coordination.runtime.evidence import refusal, vote_about
from coordination.runtime.signing import Policy

log = logging.getLogger("coord.approvals")


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


def verified(sweep_id: str, todo_id: str, gate: Mapping[str, Any], binding: str,
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
