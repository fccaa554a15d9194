"""Which of a gate's votes count: the checks every reader of votes makes.

A vote is evidence (:mod:`coordination.trust.evidence`, kind ``vote``): it counts
only if its seal holds, its person is one of the gate's ``from:``, and, with the
catalog's ``approvers:``, only with an SSH signature (:mod:`.sshsig`) by a key the
allowed-signers file gives one of the gate's approvers; the starter does not count
where the gate says ``starter_may_approve: false`` (with ``approvers:``, the starter
is the key that signed the sweep's start: :class:`Starter`); one key is one approver
(:func:`verified`).

Two readers: the count that passes a gate (:mod:`coordination.sweeps.governance.votes`) and the
landing rule (:mod:`coordination.change.rule`), which checks again, on every
landing, the votes behind a gate that reads approved: its status and approvals are
plain fields a writer without the key could set, the votes' seals and signatures
are not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from coordination.errors import CoordError
from coordination.trust import sshsig
from coordination.trust.evidence import EvidenceKind, refusal, vote_about
from coordination.trust.signing import Policy

log = logging.getLogger("coord.approvals")

#: The sweep record fields that say who started it (:func:`starter_of`).
START_FIELDS = ("started_by", "starter_sig")
#: What a start's signature is over, as a refusal says it.
START_OVER = "this sweep's start: signed for another sweep or name, or altered"


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
        # lazy: the store and models, only for a sweep with gates (a sweep's start
        # imports this module through its sending, and reads no approvers)
        from coordination.catalog.file.store import CatalogStore

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


@dataclass(frozen=True)
class Starter:
    """Who started a sweep, as ``starter_may_approve: false`` compares approvers with it.

    Without ``approvers:`` it is the name the start gave (``COORD_USER``, else git's or
    the OS user): self-declared, as every approver is then. With ``approvers:`` it is
    the key that signed the start (:func:`coordination.trust.sshsig.start_message`)
    and every principal the allowed-signers file gives that key, whatever name the
    start claimed; a start that proves nobody (unsigned, or its signature fails) leaves
    the starter ``unproven``, and then no vote counts on a gate that refuses the
    starter: any approver could be them (fail closed)."""

    name: str | None = None
    key: str | None = None  # the fingerprint of the key that signed the start
    principals: tuple[str, ...] = ()  # the principals the allowed-signers file gives it
    unproven: str | None = None  # with approvers:, why the start proves nobody

    def refuses(self, what: str, proven: set[str], key: str | None) -> str | None:
        """Why a vote (``what``) proving ``proven`` (by ``key``, if SSH-signed) does not
        count on a gate with ``starter_may_approve: false``; None if it may."""
        if self.unproven is not None:
            return (f"{what}: the sweep's starter is unproven ({self.unproven}), and the "
                    "gate says starter_may_approve: false, so no vote can be told from the "
                    "starter's: start the sweep again signed (COORD_APPROVE_KEY, or your "
                    "key in ssh-agent)")
        if self.key is not None:
            same = sorted(proven & set(self.principals))
            if (key is not None and key == self.key) or same:
                names = ", ".join(same or self.principals)
                return (f"{what}: proves {names}, who started the sweep (its start was "
                        f"signed by key {self.key}), and the gate says "
                        "starter_may_approve: false")
            return None
        if self.name and self.name in proven:
            return (f"{what}: proves {self.name}, who started the sweep, and the gate says "
                    "starter_may_approve: false")
        return None


_PROOFS: dict[tuple[str, ...], Starter] = {}


def starter_of(record: Mapping[str, Any] | None, sweep_id: str,
               approvers: Approvers) -> Starter:
    """Who started sweep ``sweep_id`` by its ``record`` (:data:`START_FIELDS`), under
    ``approvers`` (see :class:`Starter`). A signature is checked once per process (the
    allowed-signers file's change checks it again)."""
    rec = record or {}
    name = str(rec.get("started_by") or "") or None
    if approvers.allowed is None:
        return Starter(name)
    sig = rec.get("starter_sig")
    if not sig:
        return Starter(name, unproven="its start was not signed: started without an SSH "
                       "key to sign with, by coord before 0.4, or its record was changed")
    try:
        stamp = str(approvers.allowed.stat().st_mtime_ns)
    except OSError:
        stamp = "missing"
    cache = (sweep_id, name or "", str(sig), str(approvers.allowed), stamp)
    got = _PROOFS.get(cache)
    if got is None:
        try:
            proof = sshsig.verify(str(sig), sshsig.start_message(sweep_id, name or ""),
                                  approvers.allowed, None, over=START_OVER)
        except CoordError as exc:  # ssh-keygen missing: nothing proven, nothing cached
            return Starter(name, unproven=f"its start signature cannot be checked: {exc}")
        if isinstance(proof, str):
            got = Starter(name, unproven=f"its start signature: {proof}")
        else:
            got = Starter(name, proof.fingerprint, tuple(proof.principals))
        if len(_PROOFS) > 256:
            _PROOFS.clear()
        _PROOFS[cache] = got
    return got


def verified(sweep_id: str, todo_id: str, gate: Mapping[str, Any], binding: str,
             votes: Mapping[str, Any], *, started_by: str | Starter | None,
             approvers: Approvers, policy: Policy,
             proofs: Mapping[tuple[str, str], sshsig.Proof | str | CoordError] | None = None
             ) -> tuple[list[str], list[str], dict[str, str]]:
    """Of ``votes`` (person -> vote), the approvals under ``binding`` that count:
    ``(approvers, refusals, why each refused person's vote does not count)``. A vote
    counts when its seal holds (``COORD_SIGNING_KEY``), its person is one of
    ``from:``, with an allowed-signers file its SSH signature verifies for such a
    principal (web votes: the view's seal, a principal of the file), the starter
    (``started_by``: a :class:`Starter`, or the name of a self-declared one) is not
    among who it proves, by key or principal (``starter_may_approve: false``; an
    unproven starter: no vote), and no earlier vote proved the same person (one key,
    one principal: one approver). ``proofs``: each vote's SSH signature checked before
    (:func:`ssh_proofs`: (person, signature) -> what :func:`sshsig.verify_vote` said),
    so this runs no process (the landing rule's checks); None: checked here."""
    starter = started_by if isinstance(started_by, Starter) else Starter(started_by)
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
        why = refusal(EvidenceKind.vote, about(sweep_id, todo_id, binding, who), v, policy, what)
        proven: set[str] = {who}
        ids: set[str] = {f"principal {who}"}
        key: str | None = None
        if why is None and allowed_from and who not in allowed_from:
            why = f"{what}: {who} is not one of its approvers ({', '.join(allowed_from)})"
        if why is None and approvers.allowed is not None:
            proof_of = (partial(ssh_proof, sweep_id, todo_id, binding, who, v,
                                approvers.allowed, allowed_from) if proofs is None
                        else partial(_checked_before, proofs, who, v))
            got = _by_file(what, who, v, approvers, proof_of)
            if isinstance(got, str):
                why = got
            elif got is not None:
                proven, key = set(got.principals), got.fingerprint
                ids = {f"key {got.fingerprint}"} | {f"principal {p}" for p in proven}
        if why is None and no_starter:
            why = starter.refuses(what, proven, key)
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


def _checked_before(proofs: Mapping[tuple[str, str], sshsig.Proof | str | CoordError],
                    who: str, v: Mapping[str, Any]) -> sshsig.Proof | str | CoordError:
    """What :func:`ssh_proofs` found of ``who``'s vote ``v``'s SSH signature."""
    found = proofs.get((who, str(v.get("ssh"))))
    return "its SSH signature was not checked" if found is None else found


def _by_file(what: str, who: str, v: Mapping[str, Any], approvers: Approvers,
             proof_of: Callable[[], sshsig.Proof | str | CoordError]
             ) -> sshsig.Proof | str | None:
    """Under an allowed-signers file: why ``who``'s vote ``v`` does not count (a string),
    or the SSH proof it counts by (None: a sealed web or forge vote of a principal of the
    file, which proves ``who`` alone). ``proof_of``: what its SSH signature proves."""
    if v.get("via") in ("web", "forge"):  # (a view's user; a forge's reviewer)
        if not v.get("sig"):
            return (f"{what}: made by the {'web view' if v.get('via') == 'web' else 'forge'}"
                    f" without a seal; with approvers: a {v.get('via')} vote counts "
                    "only sealed (give coord COORD_SIGNING_KEY)")
        if who not in approvers.principals():
            return f"{what}: {who} is not a principal of {approvers.allowed}"
        return None
    if not v.get("ssh"):
        return (f"{what}: no SSH signature, and the catalog's approvers: requires one "
                f"(allowed signers {approvers.allowed}): approve with COORD_APPROVE_KEY "
                "naming your SSH key (or with it in ssh-agent)")
    proof = proof_of()
    if isinstance(proof, CoordError):
        raise proof
    if isinstance(proof, str):
        return f"{what}: {proof}"
    if who not in proof.principals:
        return (f"{what}: its key {proof.fingerprint} proves "
                f"{', '.join(proof.principals)}, not {who}")
    return proof


def ssh_proof(sweep_id: str, todo_id: str, binding: str, who: str, vote: Mapping[str, Any],
              allowed: Path, allowed_from: list[str]) -> sshsig.Proof | str:
    """What ``who``'s vote's SSH signature proves over this gate's ``binding``."""
    return sshsig.verify_vote(str(vote["ssh"]), vote.get("tree"), sshsig.binding_message(
        sweep_id, todo_id, binding, "approve", who), allowed, allowed_from or None)


def ssh_proofs(sweep_id: str, todo_id: str, gate: Mapping[str, Any], binding: str,
               votes: Mapping[str, Any], approvers: Approvers
               ) -> dict[tuple[str, str], sshsig.Proof | str | CoordError]:
    """Every SSH signature :func:`verified` would check of ``votes`` (approving ones
    under ``binding``, with an allowed-signers file), checked now: (person, signature)
    -> its proof, why it fails, or the error that stopped the check (ssh-keygen
    missing: raised again where it is read)."""
    out: dict[tuple[str, str], sshsig.Proof | str | CoordError] = {}
    if approvers.allowed is None:
        return out
    allowed_from = [str(u) for u in gate.get("from") or []]
    for who, v in votes.items():
        if not isinstance(v, dict) or v.get("d") != "approve" or v.get("b") != binding \
                or v.get("via") in ("web", "forge") or not v.get("ssh"):
            continue
        try:
            out[(who, str(v["ssh"]))] = ssh_proof(sweep_id, todo_id, binding, who, v,
                                                  approvers.allowed, allowed_from)
        except CoordError as exc:
            out[(who, str(v["ssh"]))] = exc
    return out


def votes_of(raw: str) -> dict[str, Any]:
    """A gate's votes field (raw JSON) as person -> vote (none if it is not JSON:
    written by hand, nothing in it counts)."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
