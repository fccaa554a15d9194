"""Signed evidence: the records a safety decision reads, sealed by their writer.

A landing trusts verify results, the change's sweep pointer (which sweep is the
plan's last, where each verify todo last ran), its todos' outcomes (each todo of the
last run ended, none failed) and its gates' decisions, a gate trusts votes, what
follows a gate trusts its decision, a cached todo trusts its cache entry, a deploy
trusts its inputs' outputs. All of
them live in Redis, and anyone who can write to Redis could write them. With
``COORD_SIGNING_KEY`` set, the process that writes such a record seals it
(:func:`seal`): HMAC-SHA256 over the record's *kind*, what it is *about* and its
*body*, added to the record as ``sig`` (``v1:<hex>``) and ``kid`` (the key's id, as
spec signatures name it).

*About* is never stored with the record: the reader supplies it from where it
found the record (the plan and verify todo, the sweep and gate and binding, the
cache key), so a record copied to another place, or a vote moved to another
binding, fails its check like a forged one.

What a reader accepts (:func:`refusal`), the rules of sweep specs
(:mod:`coordination.trust.signing`):

- with a key: only a record sealed by that key (or the previous one) for exactly
  this kind, about and body. An unsigned record is refused: fail closed;
- without a key: an unsigned record, unless ``COORD_REQUIRE_SIGNED=1``; a sealed
  one only with ``COORD_ACCEPT_UNSIGNED=1`` (it cannot be checked here).

Each refusal names the record (``what``) and why, so a user reading it knows
which record to look at and that nothing was done with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Container, Mapping
from enum import StrEnum
from typing import Any

from coordination.trust.signing import Policy, key_id

#: The prefix of an evidence seal.
VERSION = "v1"
#: The fields a seal adds to a record.
SIG, KID = "sig", "kid"
class EvidenceKind(StrEnum):
    """The kinds of record sealed: every seal and every check names one (sealed as its
    value, so a record sealed before the kinds were an enum checks the same)."""

    verify = "verify"
    vote = "vote"
    cache = "cache"
    outputs = "outputs"
    sweep = "sweep"
    outcome = "outcome"
    decision = "decision"
    context = "context"
    anchor = "anchor"
    landing = "landing"
    #: a change's pull request record (``pr:<R>``), sealed by the process that opened or
    #: found it on the forge
    pull = "pull"
    #: what a forge said of a pull request (a read, or a webhook whose signature held)
    forge = "forge"


KINDS = frozenset(EvidenceKind)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def message(kind: EvidenceKind, about: Mapping[str, Any], body: Mapping[str, Any]) -> bytes:
    """The sealed bytes: a header naming the format and the kind, what the record is
    about, and its body (every field but the seal's), as canonical JSON."""
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}")
    plain = {k: v for k, v in body.items() if k not in (SIG, KID)}
    return _canonical(["coord-evidence", VERSION, kind, dict(about), plain]).encode(
        "utf-8", "surrogatepass")


def _mac(key: str, kind: EvidenceKind, about: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    return hmac.new(key.encode(), message(kind, about, body), hashlib.sha256).hexdigest()


def seal(kind: EvidenceKind, about: Mapping[str, Any], body: Mapping[str, Any],
         keys: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``body`` with its seal by ``keys[0]`` (unchanged, unsealed, without a key)."""
    out = {k: v for k, v in body.items() if k not in (SIG, KID)}
    if keys:
        out[SIG] = f"{VERSION}:{_mac(keys[0], kind, about, out)}"
        out[KID] = key_id(keys[0])
    return out


def refusal(kind: EvidenceKind, about: Mapping[str, Any], record: Mapping[str, Any],
            policy: Policy, what: str) -> str | None:
    """None if a reader under ``policy`` may trust ``record`` as ``kind`` evidence about
    ``about``; else why not, naming the record (``what``, e.g. ``verify record of
    TODO-041 in PLAN-004``)."""
    sig, kid = record.get(SIG), record.get(KID)
    if not sig:
        if policy.keys:
            return (f"{what}: unsigned, and this process requires evidence signed with "
                    "COORD_SIGNING_KEY (written by a process without the key, or by hand)")
        if policy.require_signed:
            return (f"{what}: unsigned, and COORD_REQUIRE_SIGNED=1 requires signed evidence "
                    "(give every coord process COORD_SIGNING_KEY)")
        return None
    if not policy.keys:
        if policy.accept_unsigned and not policy.require_signed:
            return None
        return (f"{what}: signed, but this process has no key to check it: give it "
                "COORD_SIGNING_KEY")
    version, _, mac = str(sig).partition(":")
    if version != VERSION:
        return f"{what}: not a signature this coord knows ({str(sig)[:8]}...)"
    held = [k for k in policy.keys if not kid or kid == key_id(k)]
    if not held:
        return f"{what}: signed with key {kid}, which this process does not hold"
    body = {k: v for k, v in record.items() if k not in (SIG, KID)}
    if any(hmac.compare_digest(_mac(k, kind, about, body), mac) for k in held):
        return None
    return (f"{what}: signature invalid: the record was changed after it was signed, or "
            "copied from somewhere else")


def vote_about(sweep_id: str, todo_id: str, binding: str, who: str) -> dict[str, str]:
    """What a gate vote is about (its seal's; never stored: the reader knows it from
    where the vote is: the sweep, the gate, the gate's binding, the name it is under).
    Counted by :mod:`coordination.sweeps.governance.votes`; checked again by the landing rule."""
    return {"sweep": sweep_id, "todo": todo_id, "binding": binding, "approver": who}


# -- a todo's outcome (kind ``outcome``) -------------------------------------------------
# Sealed by whoever ends a todo (its worker's finish, a skip, a cancel), in the same
# write as its status: the checkpoint field ``outcome_seal`` ({run, sig, kid}). The
# body is the status and exit code the checkpoint holds, and the run that ended it.

#: The checkpoint field holding a todo's outcome seal.
OUTCOME_FIELD = "outcome_seal"


def outcome_about(sweep_id: str, todo_id: str) -> dict[str, str]:
    """What an outcome is about (from where the reader found it, never stored)."""
    return {"sweep": sweep_id, "todo": todo_id}


def outcome_body(status: object, exit_code: object, run: object) -> dict[str, Any]:
    return {"status": str(status), "exit_code": exit_code, "run": run}


def outcome_stamp(keys: tuple[str, ...] | list[str], sweep_id: str, todo_id: str, run: int,
                  status: object, exit_code: object) -> dict[str, Any] | None:
    """The ``outcome_seal`` field of a todo ending ``status`` (``exit_code``) in run
    ``run``; None without a key (written so, an older seal never stays beside it)."""
    if not keys:
        return None
    sealed = seal(EvidenceKind.outcome, outcome_about(sweep_id, todo_id),
                  outcome_body(status, exit_code, int(run)), keys)
    return {"run": int(run), SIG: sealed[SIG], KID: sealed[KID]}


def dispatched_now(levels: Any) -> frozenset[str]:
    """The todos a spec's ``levels`` (its JSON's) say its run dispatches."""
    if not isinstance(levels, list):
        return frozenset()
    return frozenset(str(t) for lvl in levels if isinstance(lvl, list) for t in lvl)


def last_dispatch(todo_id: str, run: int, now: Container[str] | None, dispatched: Any) -> int:
    """The last run of a sweep that dispatched ``todo_id``, as its spec (of run ``run``)
    says: ``run`` if the todos it dispatches (``now``: :func:`dispatched_now` of its
    levels) hold the todo, else what its ``dispatched`` map (todo -> the last run that
    dispatched it, kept from run to run) says, else 0 (the first run dispatches every
    todo). A spec written before the map was kept has only its levels: a todo the
    current run did not dispatch is then taken as of any run."""
    if now is not None and todo_id in now:
        return int(run)
    at = dispatched.get(todo_id) if isinstance(dispatched, Mapping) else None
    try:
        return min(int(at), int(run)) if at is not None else 0
    except (TypeError, ValueError):
        return int(run)  # (unreadable: the strictest reading)


def outcome_refusal(policy: Policy, sweep_id: str, todo_id: str, cp: Mapping[str, Any],
                    current_run: int | None = None, last_run: int | None = None
                    ) -> str | None:
    """None if a reader under ``policy`` may trust the status and exit code of ``cp``
    (todo ``todo_id``'s checkpoint in ``sweep_id``); else why not, naming the record.
    ``current_run``: the sweep's run now; ``last_run``: the last run that dispatched
    the todo (:func:`last_dispatch`): its outcome must be of that run or a later one
    (a resume that did not run it again keeps it), never of an earlier one put back."""
    what = f"outcome record of {todo_id} in sweep {sweep_id} ({cp.get('status')})"
    stamp = cp.get(OUTCOME_FIELD)
    stamp = stamp if isinstance(stamp, Mapping) else {}
    run = stamp.get("run")
    record = {**outcome_body(cp.get("status"), cp.get("exit_code"), run),
              SIG: stamp.get(SIG), KID: stamp.get(KID)}
    why = refusal(EvidenceKind.outcome, outcome_about(sweep_id, todo_id), record, policy, what)
    if why is not None or not stamp.get(SIG) or current_run is None:
        return why
    return _run_refusal(what, run, current_run, last_run, done="sealed",
                       again=f"ran {todo_id} again", earlier="run's outcome")


def run_window_refusal(what: str, named: object, now: int, last: int | None) -> str | None:
    """None if a record made by run ``named`` of a todo belongs to the window a reader
    may take (from ``last``, the last run that dispatched the todo, to ``now``, the
    sweep's run); else why not, naming it (``what``): a context value its todo set
    before it ran again (:mod:`coordination.sweeps.context_runs`)."""
    return _run_refusal(what, named, now, last, done="set", again="ran it again",
                        earlier="value")


def _run_refusal(what: str, named: object, now: int, last: int | None, *, done: str,
                again: str, earlier: str) -> str | None:
    """None if a record of run ``named`` belongs to the window a reader may take: from
    ``last``, the last run that made the record anew (None: any), to ``now``, the
    sweep's run; else why not, naming the record (``what``). A record of a later run
    than the sweep's, or of none, is forged or misplaced; one of an earlier run than
    ``last`` was put back over its newer one. ``done``, ``again`` and ``earlier`` word
    the refusal (``"sealed"``, what run ``last`` did, what was put back)."""
    try:
        ran = int(str(named))
    except ValueError:
        return f"{what}: names no run"
    if ran > now:
        return f"{what}: {done} in run {ran}, but the sweep is at run {now}"
    if last is not None and ran < last:
        return (f"{what}: {done} in run {ran}, but run {last} {again}: "
                f"an earlier {earlier} put back")
    return None


# -- a gate's decision (kind ``decision``) -----------------------------------------------
# Sealed by the count that passes a gate (coordination.sweeps.governance.decisions), in the same
# write as its status: the gate checkpoint's field ``decision`` ({run, sig, kid}). Checked
# by what follows the gate (sweeps) and by the landing rule (change), both here.

#: The gate checkpoint field holding its decision's seal.
DECISION_FIELD = "decision"
#: The fields of a todo's frozen spec a decision is bound to (what the sweep runs: not
#: its level or run number, which a resume changes without changing what runs).
DIGEST_FIELDS = ("repo", "run", "undo", "env", "gate", "preds", "timeout", "retries",
                 "resources")


def spec_digest_of(plan: object, todos: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 of what a sweep runs: each todo's :data:`DIGEST_FIELDS` (``todos``: todo ->
    its fields, from the spec's JSON or its parsed todos), with the plan."""
    def row(t: Mapping[str, Any]) -> list[Any]:
        out = []
        for f in DIGEST_FIELDS:  # (a field an older spec's JSON lacks: its default)
            v = t.get(f)
            out.append(sorted(v or []) if f in ("preds", "resources")
                       else (v or {}) if f == "env" else v)
        return out

    body = {tid: row(t) for tid, t in sorted(todos.items())}
    text = json.dumps({"plan": plan, "todos": body}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def binding_refusal(sweep_id: str, todo_id: str, stored: object, binding: str) -> str | None:
    """Why a gate whose checkpoint holds ``stored`` as its binding counts no vote, when
    ``binding`` (:func:`binding_of`) is the one its signed spec gives; None: the same."""
    held = str(stored or "")
    if held == binding:
        return None
    return (f"gate {todo_id} of sweep {sweep_id}: the binding its checkpoint holds "
            f"({held[:12] or 'none'}) is not the one the sweep's signed spec and its "
            f"predecessors' outcomes give now ({binding[:12]}): the binding (rolled back to "
            "the one older votes were cast under) or a predecessor's outcome was rewritten "
            "in Redis by someone other than coord; no vote is counted under it")


def votes_digest(votes: Mapping[str, Any], who: Any) -> str:
    """sha256 of the votes of ``who`` (person -> vote as stored, canonical JSON): a vote
    taken away or changed after the decision changes it."""
    chosen = {u: votes.get(u) for u in sorted(set(who))}
    text = json.dumps(chosen, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: The checkpoint fields of a gate's predecessor its binding is bound to (with the run
#: its outcome seal names: a predecessor that ran again gives the gate another binding,
#: whatever its other fields say).
BINDING_FIELDS = ("status", "exit_code", "finished_at", "outputs")


def binding_of(digest: str, preds: Mapping[str, Mapping[str, Any]]) -> str:
    """A gate's binding, what its votes are cast under and its decision sealed over:
    sha256 of what the sweep runs (``digest``: :func:`spec_digest_of` of its signed
    spec) and of each predecessor's outcome (``preds``: predecessor -> its checkpoint).
    Recomputed by whoever counts votes or judges a landing, never read from Redis: a
    binding rolled back there to the one old votes were cast under counts nothing."""
    outcomes = {}
    for p, cp in sorted(preds.items()):
        stamp = cp.get(OUTCOME_FIELD)
        outcomes[p] = {**{k: cp.get(k) for k in BINDING_FIELDS},
                       "sealed_run": stamp.get("run") if isinstance(stamp, Mapping) else None}
    text = json.dumps([digest, outcomes], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def decision_about(sweep_id: str, todo_id: str) -> dict[str, str]:
    """What a decision is about (from where the reader found it, never stored)."""
    return {"sweep": sweep_id, "gate": todo_id}


def decision_body(digest: str, binding: str, run: object, approvals: Any,
                  votes: Mapping[str, Any]) -> dict[str, Any]:
    users = sorted({str(u) for u in approvals})
    return {"decision": "approved", "binding": binding, "spec": digest, "run": run,
            "approvals": users, "votes": votes_digest(votes, users)}


def decision_stamp(keys: tuple[str, ...] | list[str], sweep_id: str, todo_id: str,
                   digest: str, binding: str, run: int, approvals: Any,
                   votes: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``decision`` field of gate ``todo_id`` passing in run ``run`` with
    ``approvals`` (``votes``: as its votes field holds them; ``digest``: what the sweep
    runs, :func:`spec_digest_of`); None without a key."""
    if not keys:
        return None
    sealed = seal(EvidenceKind.decision, decision_about(sweep_id, todo_id),
                  decision_body(digest, binding, run, approvals, votes), keys)
    return {"run": run, SIG: sealed[SIG], KID: sealed[KID]}


def decision_what(sweep_id: str, todo_id: str) -> str:
    """How a refusal names a decision record."""
    return f"decision record of gate {todo_id} in sweep {sweep_id}"


def decision_refusal(policy: Policy, sweep_id: str, todo_id: str, cp: Mapping[str, Any],
                     votes: Mapping[str, Any], *, digest: str, needed: int, run: int,
                     last_run: int) -> str | None:
    """None if what goes by gate ``todo_id`` may take its checkpoint ``cp`` as passed
    (under ``policy``: sealed by a key held here, for this sweep, gate, binding, spec
    ``digest``, these approvers and their ``votes``; at least ``needed`` of them; in a
    run from ``last_run``, the last that opened the gate, to ``run``, the sweep's now),
    or if it does not read passed; else why not, naming the record."""
    if cp.get("status") != "succeeded":
        return None
    name = decision_what(sweep_id, todo_id)
    found = cp.get(DECISION_FIELD)
    stamped: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    ran_in = stamped.get("run")
    approvals = [str(u) for u in cp.get("approvals") or []]
    record = {**decision_body(digest, str(cp.get("binding") or ""), ran_in, approvals, votes),
              SIG: stamped.get(SIG), KID: stamped.get(KID)}
    why = refusal(EvidenceKind.decision, decision_about(sweep_id, todo_id), record, policy, name)
    if why is not None:
        return why
    if not stamped.get(SIG):
        return None  # a process that takes unsigned evidence (no key, none required)
    if len(set(approvals)) < needed:
        return f"{name}: {len(set(approvals))} approvals, and the gate needs {needed}"
    return _run_refusal(name, ran_in, run, last_run, done="decided",
                       again="of the sweep opened the gate again", earlier="decision")


def policy_of(settings: Any) -> Policy:
    """The evidence policy of a process's settings (the spec policy's switches)."""
    return Policy(tuple(settings.signing_keys), bool(settings.accept_unsigned),
                  bool(settings.require_signed))
