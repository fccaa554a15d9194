"""Keys derived for one run of one todo: what a todo may seal with, and nothing else.

A todo's command never holds ``COORD_SIGNING_KEY`` (:mod:`coordination.trust.secrets`).
What it may write through coord, its context values, is sealed with a key derived for
its own run (:func:`run_key`): HMAC-SHA256 of the signing key over the run's identity
(:class:`RunId`: sweep, todo, the sweep's run, its plan), under a header no other
derivation and no seal uses. The key seals records of that run only:

- a reader holding the signing key derives the key again from the identity the record
  names (``by``) and checks the seal with it (:func:`run_policy`): a record naming
  another run, or changed, fails;
- nothing that a decision reads (a gate's decision, a vote, a todo's outcome, a verify
  record, a sweep pointer, an anchor, a spec, a manifest) is ever checked against a
  derived key: those are checked against the signing key itself, which the derived key
  is not, and from which it cannot be turned back.

The todo is given its run's key as ``COORD_RUN_TOKEN``: it is also what it proves its run
with to its worker's context service (:mod:`workers.context_proxy`), the one door its
``coord context`` goes through (``COORD_CONTEXT_SOCKET``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coordination.trust.signing import Policy

#: What a todo is given: its run's key, and where its worker's context service listens.
RUN_TOKEN_ENV = "COORD_RUN_TOKEN"
CONTEXT_SOCKET_ENV = "COORD_CONTEXT_SOCKET"
#: The header of a derivation (its format's version in it).
HEADER = "coord-run-key"
VERSION = "v1"


@dataclass(frozen=True)
class RunId:
    """One run of one todo: the sweep, the todo, the sweep's run, the sweep's plan."""

    sweep: str
    todo: str
    run: int
    plan: str

    def document(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "todo": self.todo, "run": self.run, "plan": self.plan}

    @classmethod
    def of(cls, doc: object) -> RunId | None:
        """The identity a record's ``by`` names; None when it names none."""
        if not isinstance(doc, Mapping):
            return None
        sweep, todo, run, plan = (doc.get(k) for k in ("sweep", "todo", "run", "plan"))
        if not (isinstance(sweep, str) and isinstance(todo, str) and isinstance(plan, str)):
            return None
        if type(run) is not int or run < 0:
            return None
        return cls(sweep, todo, run, plan)

    def __str__(self) -> str:
        return f"{self.todo} of sweep {self.sweep} (run {self.run})"


def run_key(key: str, rid: RunId) -> str:
    """The key of run ``rid`` derived from ``key`` (hex: it is handed on as text)."""
    head = json.dumps([HEADER, VERSION, rid.sweep, rid.todo, rid.run, rid.plan],
                      separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key.encode(), head.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def run_keys(keys: tuple[str, ...] | list[str], rid: RunId) -> tuple[str, ...]:
    """The keys of run ``rid`` derived from each of ``keys`` (current first)."""
    return tuple(run_key(k, rid) for k in keys)


def run_policy(policy: Policy, rid: RunId) -> Policy:
    """``policy`` with the keys of run ``rid`` in place of its own: what a record sealed
    by that run is checked under (its switches unchanged)."""
    return Policy(run_keys(policy.keys, rid), policy.accept_unsigned, policy.require_signed)
