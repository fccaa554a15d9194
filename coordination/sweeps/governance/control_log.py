"""Steering a sweep, in the catalog's audit log: who paused, unpaused, cancelled,
resumed or rolled back which sweep, and what it did.

Each of :class:`~coordination.sweeps.service.SweepService`'s steering calls (the CLI's
`coord sweep pause|unpause|cancel|resume|rollback`, and the MCP server's) appends one
entry (``op`` ``sweep.pause`` ...; ``ids`` the sweep; ``decision`` the outcome) to the
hash-chained log beside the catalog, naming the actor as every entry does
(``COORD_USER``, else git's ``user.email``, else the OS user). Approving, rejecting,
landing and reverting write their own entries (:mod:`coordination.sweeps.governance.approvals`,
`coord change land|revert`).

With the catalog's ``approvers:``, the actor also signs what they did (an SSH signature
by ``COORD_APPROVE_KEY`` or the ssh-agent's key, verified against the allowed-signers
file): the entry keeps the signature, its message and the key's fingerprint, so a name
in ``who`` can be told from a key that proves it. Steering is never refused for want of
a key (a cancel must stop a bad sweep whoever can sign): such an entry says
``unsigned`` and why.

The action has happened when its entry is written; an entry that cannot be written
(no catalog file here: a sweep steered from a machine without the catalog; a log not
writable) is logged as a warning and the action stands.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from coordination.catalog.audit.log import who as whoami
from coordination.catalog.file.store import CatalogStore
from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.trust import sshsig
from coordination.trust.approvers import Approvers

log = logging.getLogger("coord.audit")

#: The steering operations with an entry of their own (their ``op`` is ``sweep.<name>``).
CONTROLS = ("pause", "unpause", "cancel", "resume", "rollback")
#: What signature failures on a steering message mean.
OVER = "this steering entry: signed for another action, sweep, time or name, or altered"


#: Who steers, and through what, when not the person at this terminal: the web view's
#: signed-in user (``via`` ``web``), set around the call by :func:`acting`.
_ACTING: ContextVar[tuple[str, str] | None] = ContextVar("coord_acting", default=None)


@contextmanager
def acting(who: str, via: str) -> Iterator[None]:
    """Steer as ``who`` through ``via`` (the web view: its signed-in user, ``web``): the
    sweep's events name them (``SweepService``'s actor) and each entry says ``via``."""
    token = _ACTING.set((who, via))
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting_as() -> tuple[str, str] | None:
    """(who, via) of the :func:`acting` around this call, or None."""
    return _ACTING.get()


def message(op: str, sweep_id: str, who: str, at: str) -> bytes:
    """What an actor signs: the action, the sweep, their name, when. Its first line
    differs from a vote's and a start's, so none passes for another."""
    return f"coord-control v1\n{op} {sweep_id}\nby {who}\nat {at}\n".encode()


def record(rt: Runtime, catalog: Path | None, op: str, sweep_id: str,
           outcome: Mapping[str, object], *, who: str | None = None) -> None:
    """Append ``sweep.<op>`` of ``sweep_id`` to the catalog's audit log (see the module);
    ``who``: the actor, when the caller named them already (its events did)."""
    if op not in CONTROLS:
        raise ValueError(f"not a steering operation: {op}")
    if catalog is None or not catalog.is_file():
        log.warning("sweep %s: %s is not in an audit log (no catalog file here)", sweep_id, op)
        return
    try:
        given = _ACTING.get()
        who = who or (given[0] if given else None) or whoami(catalog.resolve().parent)
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        decision: dict[str, object] = {"sweep_id": sweep_id, "at": at, **outcome}
        if given:
            decision["via"] = given[1]
        decision.update(_signed(rt, catalog, op, sweep_id, who, at))
        CatalogStore(catalog).record_decision(who=who, op=f"sweep.{op}", ids=[sweep_id],
                                              decision=decision)
    except Exception as exc:  # noqa: BLE001 - the action stands (events, Redis): say it
        log.warning("sweep %s: its %s is not in the audit log: %s", sweep_id, op, exc)


def _signed(rt: Runtime, catalog: Path, op: str, sweep_id: str, who: str,
            at: str) -> dict[str, object]:
    """The signature fields of an entry: none without ``approvers:``; else the
    signature and the key that made it, or ``unsigned`` and why."""
    allowed = Approvers.of(catalog).allowed
    if allowed is None:
        return {}
    text = message(op, sweep_id, who, at)
    try:
        signature = sshsig.sign(text, rt.settings.approve_key, who=who,
                                what=f"{op} of sweep {sweep_id} as {who}")
        proof = sshsig.verify(signature, text, allowed, None, over=OVER)
    except UsageError as exc:
        return {"unsigned": exc.message}
    if not isinstance(proof, sshsig.Proof):
        return {"unsigned": proof}
    return {"signature": signature, "signed_message": text.decode(),
            "signed_by": proof.fingerprint, "principal": proof.principal}
