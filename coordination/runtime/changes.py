"""A change's state in Redis: one hash per plan (``Keys.change``).

Fields (JSON values unless said):

    repo:<R>        {"base", "remote", "base_sha", "candidate", "worktree", "at"}
    verify:<TODO>   the last end of a verify todo: {"shas": {R: candidate SHA}: the set it
                    ran on, "ok", "exit_code", "reason", "last" (a failure's last line of
                    output), "repo", "sweep", "run", "at",
                    "sig", "kid"}, sealed (:mod:`.evidence`, kind ``verify``) about
                    :func:`verify_about` (plan, todo, that set, the sweep and run it ran
                    in); written by the worker for a success and a failure alike
    sweep           the plan's sweep pointer (JSON): {"sweep": the plan's last sweep (``coord
                    plan sweep``; None: only ``coord todo run``s yet), "run": its run,
                    "verify": {TODO: [sweep, run]: where each verify todo last started},
                    "at", "sig", "kid"}, sealed (kind ``sweep``) about :func:`pointer_about`
                    (the plan): written when a sweep of the plan's todos starts or resumes
                    (:meth:`ChangeStore.note_sweep`); its gates' and todos' statuses are the
                    landing rule's, and a verify record counts only from the run its todo
                    last started in (an older record, put back, is refused)
    conflict:<R>    why merging a moved base into the branch failed (text)
    prepare:<R>     the repo's ``prepare:`` command's last run in a new worktree: {"command",
                    "ok", "exit_code", "output" (its tail), "worktree", "at"}
    state           the change's last landing: landing | landed | reverted |
                    revert_failed; or failed_verification: the merge train dropped it
    reason          why it ended reverted, revert_failed or failed_verification (text)
    dropped         {"shas": {R: SHA}, "at"}: the candidate set the train dropped it on
    manifest        the landing manifest (JSON text, exactly as signed)
    manifest_sig    its signature (``v2:<hex>``), manifest_key_id: the key's id
    undo            an undo under way (state ``landing`` with a ``reason``): that reason
                    sealed (kind ``landing``) about the plan and its manifest, by the
                    lander that stopped the landing (JSON: {"reason", "sig", "kid"})
    own             a queued change's own candidates {R: SHA} (the merge train's)
    ended_at        when its last landing or revert ended (seconds since the epoch): which
                    of two copies of the change is newer (:mod:`coordination.change.mirror`)
    lander          the process landing or reverting the change now (JSON): {"host", "pid",
                    "started", "op": land|revert, "at"}: written when it starts or carries
                    one on, gone once the landing or revert ends (so a record there whose
                    process ended is an interrupted one: ``coord change status``)
    step:<R>        {"state": landing|landed|reverting|reverted|revert_failed|not_landed,
                     "landed": SHA, "pre", "over", "revert": SHA, "by", "ident", "why",
                     "reland", "reland_over", "relanded"} (written under the repo's lease)
    pr:<R>          the repo's pull request on its forge (``coord change publish``):
                    {"kind", "project", "number", "url", "branch", "base", "head": the
                    commit coord pushed to its branch, "by", "at", "status_sha", "status":
                    the ``coord/verify`` status coord last posted}
                    sealed (kind ``pull``) about :func:`pull_about` (plan, repo, field) by
                    the process that opened or found it on the forge; a record whose seal
                    fails is not read as the repo's pull request (``refused_pulls``)
    revert_pr:<R>   the pull request ``coord change revert`` opened to take it back out
                    (the same fields; ``by``: revert)
    ended           the change's last landing or revert as its lander ended it (state
                    landed, reverted, revert_failed, partially_landed): {"state", "at",
                    "sig", "kid"}, sealed (kind ``landing``) about :func:`ended_about`
                    (the plan, the manifest it ended, ``ended``): what ``coord change
                    prune`` takes the change as ended from, never ``state`` alone

``verify:<TODO>``, ``sweep``, ``dropped``, ``prepare:<R>``, ``step:<R>``, ``lander``,
``pr:<R>`` and ``revert_pr:<R>`` are read as typed records (:mod:`coordination.runtime.change_records`: parsed once here,
written back as stored).

Candidates are written by the worker holding the repo's lease (one writer per
repo at a time); landing steps by :meth:`ChangeStore.step`, fenced.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from enum import Enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from coordination.keys import Keys
from coordination.runtime.change_records import (
    ForgeView,
    LanderRecord,
    PrepareRecord,
    PullRecord,
    StepRecord,
    SweepPointer,
    TrainDrop,
    VerifyRecord,
    json_object,
)
from coordination.runtime.checkpoints import TransitionRefused
from coordination.runtime.leases import Lease, new_token
from coordination.runtime.scripts import lua
from coordination.status import CHANGE_ENDED, CHANGE_TRANSITIONS, STEP_TRANSITIONS, StepState
from coordination.status import ChangeState as CS
from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind
from coordination.trust.signing import Policy

_S = TypeVar("_S", bound=Enum)

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared


@dataclass(frozen=True)
class RepoRecord:
    base: str
    remote: str
    base_sha: str
    candidate: str
    worktree: str


@dataclass(frozen=True)
class ChangeState:
    """Everything of one change, read in one HGETALL."""

    repos: dict[str, RepoRecord]
    verifies: dict[str, VerifyRecord]
    conflicts: dict[str, str]
    steps: dict[str, StepRecord]
    state: str | None
    reason: str | None
    manifest: str | None
    manifest_sig: str | None
    manifest_key_id: str | None
    #: the plan's last sweep as its pointer names it (None: never swept since 0.4); not
    #: checked: the landing rule checks the pointer's seal (``pointer``) first
    sweep: str | None = None
    #: the train's drop (None: not dropped)
    dropped: TrainDrop | None = None
    #: the sweep pointer (see the module's fields), None: none
    pointer: SweepPointer | None = None
    #: the process landing or reverting it, None: none is (or one of before 0.5)
    lander: LanderRecord | None = None
    #: repo -> its prepare command's last run
    prepares: dict[str, PrepareRecord] = field(default_factory=dict)
    #: the lander's lease (``Keys.change_lander``) is there: it renewed it within its
    #: TTL (None: not read)
    lander_alive: bool | None = None
    #: repo -> its pull request on its forge (``coord change publish``)
    pulls: dict[str, PullRecord] = field(default_factory=dict)
    #: repo -> the pull request reverting it (``coord change revert`` of ``land: pr``)
    revert_pulls: dict[str, PullRecord] = field(default_factory=dict)
    #: the seal of an undo under way (``undo``: JSON, sealed by the lander that stopped
    #: the landing, about the plan and its manifest, over ``reason``); None: none
    undo: str | None = None
    #: ``pr:<R>`` / ``revert_pr:<R>`` records whose seal failed: field -> why (never
    #: read as the repo's pull request: a keyless writer's, or changed by one)
    refused_pulls: dict[str, str] = field(default_factory=dict)
    #: the sealed end of the last landing or revert (``ended``: JSON), None: none
    ended: str | None = None

    def step(self, repo: str) -> StepRecord:
        """``repo``'s step in the last landing or revert (an empty one: none)."""
        return self.steps.get(repo) or StepRecord.of({})


#: The change state the merge train leaves a change in when it drops it.
FAILED_VERIFICATION = CS.failed_verification


def refused_move(old: str | None, new: str) -> str | None:
    """Why a change's stored state may not move from ``old`` to ``new``
    (:data:`coordination.status.CHANGE_TRANSITIONS`), None: it may. A stored state
    this version does not know moves as a change never landed does."""
    return _refused(CS, CHANGE_TRANSITIONS, old, new, "change state", "a change",
                    "no state", "CHANGE_TRANSITIONS")


def refused_step(old: str | None, new: str | None) -> str | None:
    """Why a repo's step may not move from ``old`` to ``new``
    (:data:`coordination.status.STEP_TRANSITIONS`), None: it may. A step state this
    version does not know moves as no step does."""
    return _refused(StepState, STEP_TRANSITIONS, old, str(new), "step state", "a repo's step",
                    "no step", "STEP_TRANSITIONS")


def _refused(kind: type[_S], table: Mapping[_S | None, Collection[_S]], old: str | None,
             new: str, named: str, subject: str, nothing: str, table_name: str) -> str | None:
    """Why ``old`` -> ``new`` is no move of ``table`` (one of :mod:`coordination.status`'s),
    None: it is. An ``old`` that ``table`` does not know moves as none does."""
    try:
        target = kind(new)
    except ValueError:
        return f"unknown {named} {new!r}"
    source = next((k for k in table if k is not None and k.value == old), None)
    if target not in table[source]:
        return (f"{subject} may not move from {source or nothing} to {target}: see "
                f"coordination.status.{table_name}")
    return None


def verify_about(plan: str, todo: str, shas: dict[str, str], sweep: str | None = None,
                 run: int | None = None) -> dict[str, Any]:
    """What a verify record is about (sealed with it, never stored): the plan, the
    verify todo, the candidate set it ran on, and the sweep and run it ran in. A reader
    passes the set it judges (every repo's candidate now) and the run the plan's sweep
    pointer says the todo last started in: a record of another set, plan, todo or run
    fails."""
    return {"plan": plan, "todo": todo, "candidates": dict(sorted(shas.items())),
            "sweep": sweep, "run": run}


def undo_about(plan: str, manifest: object) -> dict[str, Any]:
    """What an undo under way is about (its seal's): the plan and the manifest (its
    sha256) whose landing it undoes."""
    text = str(manifest or "")
    return {"plan": plan, "manifest": hashlib.sha256(text.encode("utf-8", "surrogatepass"))
            .hexdigest()}


def pull_about(plan: str, repo: str, field_name: str) -> dict[str, Any]:
    """What a pull request record is about (its seal's, never stored): the plan, the
    repo and the field it is kept under (``pr`` or ``revert_pr``), so a record copied to
    another repo, plan or field fails its check."""
    return {"plan": plan, "repo": repo, "field": field_name}


def view_about(plan: str, repo: str) -> dict[str, Any]:
    """What a forge view is about (its seal's): the plan and the repo. The pull request
    it is of is in its body (``number``), which the reader compares with the sealed
    pull request record."""
    return {"plan": plan, "repo": repo}


def ended_about(plan: str, manifest: object) -> dict[str, Any]:
    """What the end of a landing or revert is about (its seal's): the plan and the
    manifest (its sha256) of the landing it ended, marked ``ended`` (so no undo record,
    sealed about the same plan and manifest, passes for one)."""
    return {**undo_about(plan, manifest), "record": "ended"}


def pointer_about(plan: str) -> dict[str, Any]:
    """What a change's sweep pointer is about (sealed with it, never stored): its plan."""
    return {"plan": plan}


def _float(v: object) -> float:
    try:
        return float(str(v))
    except (TypeError, ValueError):
        return 0.0


def _repo_record(v: str) -> RepoRecord:
    """A repo's record as the store wrote it; a field that is not text reads as none (as
    a record that is not JSON does): the landing then finds nothing to land there."""
    d = json_object(v)

    def text(name: str) -> str:
        got = d.get(name)
        return got if isinstance(got, str) else ""

    return RepoRecord(text("base"), text("remote"), text("base_sha"), text("candidate"),
                      text("worktree"))


class ChangeStore:
    def __init__(self, r: redis.Redis, keys: Keys, lease_ttl: float,
                 signing_keys: tuple[str, ...] | list[str] = (),
                 policy: Policy | None = None) -> None:
        self.r = r
        self.keys = keys
        self.ttl_ms = max(1, int(lease_ttl * 1000))
        #: COORD_SIGNING_KEY (and the previous one): verify records are sealed with the first
        self.signing_keys = tuple(signing_keys)
        #: what a pull request record and a forge view are checked under as they are read
        #: (the runtime's: its keys and switches; else these keys, unsigned refused with one)
        self.policy = policy if policy is not None else Policy(self.signing_keys)

    def read(self, plan: str) -> ChangeState:
        with self.r.pipeline(transaction=False) as p:
            p.hgetall(self.keys.change(plan))
            p.exists(self.keys.change_lander(plan))
            got = p.execute()
        raw: dict[str, str] = got[0]
        alive = bool(got[1])
        repos, verifies, conflicts, steps, prepares = {}, {}, {}, {}, {}
        pulls: dict[str, PullRecord] = {}
        reverts: dict[str, PullRecord] = {}
        refused: dict[str, str] = {}
        for k, v in raw.items():
            kind, _, name = k.partition(":")
            if kind == "repo":
                repos[name] = _repo_record(v)
            elif kind == "verify":
                verifies[name] = VerifyRecord.from_json(v)
            elif kind == "conflict":
                conflicts[name] = v
            elif kind == "step":
                steps[name] = StepRecord.from_json(v)
            elif kind == "prepare":
                prepares[name] = PrepareRecord.from_json(v)
            elif kind in ("pr", "revert_pr"):
                pull = PullRecord.from_json(v)
                if pull is None:
                    continue
                why = self.pull_refusal(plan, name, kind, pull)
                if why:
                    refused[k] = why
                else:
                    (pulls if kind == "pr" else reverts)[name] = pull
        pointer = SweepPointer.from_json(raw.get("sweep"))
        return ChangeState(repos, verifies, conflicts, steps, raw.get("state"), raw.get("reason"),
                           raw.get("manifest"), raw.get("manifest_sig"),
                           raw.get("manifest_key_id"), pointer.sweep if pointer else None,
                           TrainDrop.from_json(raw.get("dropped")), pointer,
                           LanderRecord.from_json(raw.get("lander")),
                           prepares, alive, pulls, reverts, raw.get("undo"),
                           refused_pulls=refused, ended=raw.get("ended"))

    def pull_refusal(self, plan: str, repo: str, field_name: str,
                     rec: PullRecord) -> str | None:
        """Why ``rec`` (``field_name:repo`` of ``plan``) is not taken as the repo's pull
        request: its seal (kind ``pull``) fails under this store's policy; None: it
        holds (or, keyless, an unsigned record is taken: see docs/explanation/security.md)."""
        what = (f"pull request record {field_name}:{repo} of change {plan} "
                f"(names #{rec.number})")
        return evidence.refusal(EvidenceKind.pull, pull_about(plan, repo, field_name),
                                rec.document, self.policy, what)

    def repos(self, plan: str, names: list[str]) -> dict[str, RepoRecord]:
        """The records of ``names`` (those recorded), in one HMGET: what a todo of the
        change reads, however many verify records the change holds (:meth:`read` reads
        them all: a verify template's, each naming every repo, grow as repos squared)."""
        if not names:
            return {}
        got: list[str | None] = self.r.hmget(  # type: ignore[assignment]
            self.keys.change(plan), [f"repo:{n}" for n in names])
        return {n: _repo_record(v) for n, v in zip(names, got) if v is not None}

    def set_repo(self, plan: str, repo: str, rec: RepoRecord) -> None:
        """A repo's base and candidate as its worktree has them now. A candidate that
        moved clears the repo's conflict (merged by hand)."""
        doc = json.dumps({"base": rec.base, "remote": rec.remote, "base_sha": rec.base_sha,
                          "candidate": rec.candidate, "worktree": rec.worktree,
                          "at": time.time()})
        # MULTI: the new candidate and the conflict it resolves are seen together.
        with self.r.pipeline(transaction=True) as p:
            p.hset(self.keys.change(plan), f"repo:{repo}", doc)
            p.hdel(self.keys.change(plan), f"conflict:{repo}")
            p.execute()

    def set_prepare(self, plan: str, repo: str, *, command: str, ok: bool,
                    exit_code: int | None, output: str, worktree: str) -> None:
        """How ``repo``'s prepare command last ran in a new worktree of ``plan``."""
        rec = PrepareRecord.of({"command": command, "ok": ok, "exit_code": exit_code,
                                "output": output, "worktree": worktree, "at": time.time()})
        self.r.hset(self.keys.change(plan), f"prepare:{repo}", rec.to_json())

    def set_pull(self, plan: str, repo: str, rec: PullRecord, *, revert: bool = False) -> None:
        """``repo``'s pull request (``revert``: the one reverting it), as published."""
        kind = "revert_pr" if revert else "pr"
        doc = json.loads(json.dumps(rec.document))  # (sealed as it reads back)
        sealed = evidence.seal(EvidenceKind.pull, pull_about(plan, repo, kind), doc,
                               self.signing_keys)
        self.r.hset(self.keys.change(plan), f"{kind}:{repo}", json.dumps(sealed))

    # -- what the forge said (a cache beside the change: Keys.change_forge) ---------
    def forge_views(self, plan: str) -> dict[str, ForgeView]:
        """repo -> what its forge said of its pull request last (only views whose seal
        holds: :meth:`checked_forge_views`)."""
        return self.checked_forge_views(plan)[0]

    def checked_forge_views(self, plan: str) -> tuple[dict[str, ForgeView], dict[str, str]]:
        """(repo -> what its forge said of its pull request last, whose seal (kind
        ``forge``, about :func:`view_about`) holds; repo -> why a view kept there is
        not taken: written by someone without the key, changed, or copied)."""
        raw: dict[str, str] = self.r.hgetall(self.keys.change_forge(plan))  # type: ignore[assignment]
        out, refused = {}, {}
        for repo, text in raw.items():
            view = ForgeView.from_json(text)
            if view is None:
                continue
            why = evidence.refusal(
                EvidenceKind.forge, view_about(plan, repo), view.record, self.policy,
                f"forge view of {repo}'s pull request in change {plan} "
                f"(source {view.source})")
            if why:
                refused[repo] = why
            else:
                out[repo] = view
        return out, refused

    def set_forge_view(self, plan: str, repo: str, view: ForgeView) -> None:
        """What ``repo``'s forge said, sealed by this process (it read the forge, or a
        webhook whose signature it checked)."""
        body = json.loads(json.dumps(view.body()))  # (sealed as it reads back)
        sealed = evidence.seal(EvidenceKind.forge, view_about(plan, repo), body,
                               self.signing_keys)
        self.r.hset(self.keys.change_forge(plan), repo, json.dumps(sealed))

    def forget_forge_views(self, plan: str, repos: list[str] | None = None) -> None:
        """Drop what the forge said (of ``repos``; None: every repo): the next read asks."""
        if repos is None:
            self.r.delete(self.keys.change_forge(plan))
        elif repos:
            self.r.hdel(self.keys.change_forge(plan), *repos)

    def set_conflict(self, plan: str, repo: str, why: str) -> None:
        self.r.hset(self.keys.change(plan), f"conflict:{repo}", why)

    def record_verify(self, plan: str, todo: str, repo: str, shas: dict[str, str], *,
                      ok: bool = True, exit_code: int | None = 0, reason: str | None = None,
                      sweep: str | None = None, run: int | None = None,
                      last: str | None = None) -> VerifyRecord:
        """How verify todo ``todo`` (run in ``repo``) ended on the candidate set ``shas``,
        sealed with COORD_SIGNING_KEY when this process has it; the record written.
        A success and a failure alike: the last end of the todo is what it says."""
        body = {"repo": repo, "shas": dict(shas), "ok": bool(ok), "exit_code": exit_code,
                "reason": reason, "last": last, "sweep": sweep, "run": run, "at": time.time()}
        rec = VerifyRecord.of(evidence.seal(EvidenceKind.verify, verify_about(plan, todo, shas, sweep, run),
                                            body, self.signing_keys))
        self.r.hset(self.keys.change(plan), f"verify:{todo}", rec.to_json())
        return rec

    def note_sweep(self, plan: str, sweep_id: str, run: int, verify: list[str] | tuple[str, ...],
                   *, last: bool, base: SweepPointer | None = None) -> SweepPointer:
        """A sweep of the plan's todos starts (or resumes: run ``run``): with ``last`` it
        is the plan's last sweep (a plan sweep; ``coord todo run`` is not); each todo of
        ``verify`` (verify todos it runs) last started in it, at this run. The pointer is
        sealed again with COORD_SIGNING_KEY; what an earlier one said is kept only if its
        seal holds (a pointer a keyless writer wrote is not sealed again: its content is
        dropped, and the verify todos it named count again only once they ran again).
        ``base``: the pointer to build on in place of the one Redis holds (the newest
        freshness anchor's, kept outside Redis: :mod:`coordination.change.anchor`), so
        a pointer put back in Redis is never carried forward. Returns the pointer
        written."""
        key = self.keys.change(plan)
        for p, raw in self._tries(key, "sweep",
                                  f"the sweep pointer of {plan} kept changing: not written"):
            old = base if base is not None else self._trusted_pointer(
                plan, SweepPointer.from_json(raw))
            body: dict[str, Any] = {"sweep": old.sweep, "run": old.run,
                                    "verify": dict(old.verify)}
            if last:
                body["sweep"], body["run"] = sweep_id, int(run)
            for todo in verify:
                body["verify"][todo] = [sweep_id, int(run)]
            body["at"] = time.time()
            doc = SweepPointer.of(evidence.seal(EvidenceKind.sweep, pointer_about(plan), body,
                                                self.signing_keys))
            p.multi()
            p.hset(key, "sweep", doc.to_json())
        return doc

    def _tries(self, key: str, name: str,
               gave_up: str) -> Iterator[tuple[redis.client.Pipeline, str | None]]:
        """The tries of a compare-and-set of field ``name`` of ``key``: each gives the
        pipeline, WATCHing ``key``, and the value stored now; the loop's body queues
        its writes (after ``multi``) and this executes them. A write to ``key`` in
        between (WatchError) has the body read and make them again; after 16 tries,
        :class:`redis.WatchError` saying ``gave_up``. What the body raises goes through
        (the pipeline let go, nothing written)."""
        for _ in range(16):
            with self.r.pipeline(transaction=True) as p:
                try:
                    p.watch(key)  # type: ignore[no-untyped-call]
                    raw = p.hget(key, name)
                    yield p, (str(raw) if raw is not None else None)
                    p.execute()
                    return
                except redis.WatchError:
                    continue
        raise redis.WatchError(gave_up)

    def _trusted_pointer(self, plan: str, old: SweepPointer | None) -> SweepPointer:
        """``old`` if its seal holds under this process's keys, else an empty pointer."""
        if old is None or evidence.refusal(EvidenceKind.sweep, pointer_about(plan), old.document,
                                           Policy(self.signing_keys), "pointer"):
            return SweepPointer.of({})
        return old

    def write_state(self, plan: str, new: str,
                    along: Callable[[redis.client.Pipeline], object]) -> None:
        """The one door of a change's stored state: ``new``, with what ``along`` queues
        on the same transaction, once :data:`coordination.status.CHANGE_TRANSITIONS`
        allows the move from the state stored now (:class:`TransitionRefused` before
        anything is written). Like a sweep's status (a compare-and-set), the state is
        checked where it is written: read under WATCH, so a write to the change in
        between has it read and checked again, and the move checked is the move made.
        (:meth:`restore` copies a whole newer record of the change: not a move.)"""
        key = self.keys.change(plan)
        for p, raw in self._tries(key, "state",
                                  f"change {plan} kept changing: its state {new} not written"):
            why = refused_move(raw, new)
            if why:
                raise TransitionRefused(f"change {plan}: {why}")
            p.multi()
            p.hset(key, "state", str(CS(new)))
            along(p)

    def drop(self, plan: str, reason: str, shas: dict[str, str]) -> None:
        """The merge train dropped the change: ``failed_verification`` with why, on the
        candidate set ``shas`` (it stays so until a verify todo passes on another set)."""
        key = self.keys.change(plan)

        def why_and_where(p: redis.client.Pipeline) -> None:
            p.hset(key, mapping={"reason": reason,
                                 "dropped": json.dumps({"shas": shas, "at": time.time()})})

        self.write_state(plan, FAILED_VERIFICATION, why_and_where)

    def begin_landing(self, plan: str, manifest: str, sig: dict[str, str],
                      said: Prepared | None = None) -> None:
        """A new landing: its manifest, state ``landing``, the last landing's steps gone;
        ``said`` (its ``change.prepared``) written in the same transaction."""
        key = self.keys.change(plan)
        old = [f"step:{repo}" for repo in self.read(plan).steps]

        # One transaction: a reader sees the old landing or the new one, never steps of
        # the old one under the new manifest.
        def new_manifest(p: redis.client.Pipeline) -> None:
            if old:
                p.hdel(key, *old)
            p.hdel(key, "reason", "manifest_sig", "manifest_key_id", "undo", "ended")
            p.hset(key, "manifest", manifest)
            for name, value in sig.items():
                p.hset(key, name, value)
            if said is not None:
                said.queue_on(p)

        self.write_state(plan, CS.landing, new_manifest)

    def end_landing(self, plan: str, state: str, reason: str | None,
                    said: Prepared | None = None) -> None:
        """The landing's (or revert's) state; one that ended it (:data:`CHANGE_ENDED`)
        forgets its lander too (``landing`` with a reason: its undo is under way, which
        ``undo`` seals about the plan and its manifest: what carrying it on checks,
        :mod:`coordination.change.carry_on`). ``said``: the event that tells of it
        (``change.landed``, ``change.reverted``), written in the same transaction."""
        key = self.keys.change(plan)
        undo = ended = None
        ended_at = time.time()
        if state == CS.landing and reason:
            manifest = self.r.hget(key, "manifest")
            undo = json.dumps(evidence.seal(EvidenceKind.landing, undo_about(plan, manifest),
                                            {"reason": reason}, self.signing_keys))
        if state in CHANGE_ENDED:  # sealed: what prune takes the change as ended from
            manifest = self.r.hget(key, "manifest")
            ended = json.dumps(evidence.seal(EvidenceKind.landing, ended_about(plan, manifest),
                                             {"state": str(CS(state)), "at": ended_at},
                                             self.signing_keys))

        def reason_and_end(p: redis.client.Pipeline) -> None:
            if reason:
                p.hset(key, "reason", reason)
            else:
                p.hdel(key, "reason")
            if undo:
                p.hset(key, "undo", undo)
            else:
                p.hdel(key, "undo")
            if state in CHANGE_ENDED:
                p.hdel(key, "lander")
                p.delete(self.keys.change_lander(plan))
                p.hset(key, "ended_at", repr(ended_at))
            if ended:
                p.hset(key, "ended", ended)
            else:
                p.hdel(key, "ended")
            if said is not None:
                said.queue_on(p)

        self.write_state(plan, state, reason_and_end)

    def dump(self, plan: str) -> dict[str, str]:
        """Every field of the change as stored (what is kept beside the catalog)."""
        return dict(self.r.hgetall(self.keys.change(plan)))  # type: ignore[arg-type]

    def restore(self, plan: str, fields: dict[str, str]) -> bool:
        """The change as ``fields`` (a :meth:`dump` made elsewhere) says it, in place of
        what this Redis has, when that ended later (``ended_at``) than anything here and
        no landing is under way here; False: left as it was."""
        key = self.keys.change(plan)
        theirs = _float(fields.get("ended_at"))
        with self.r.pipeline(transaction=True) as p:
            try:
                p.watch(key)  # type: ignore[no-untyped-call]
                here = p.hmget(key, ["ended_at", "state"])
                if theirs <= _float(here[0]) or here[1] == CS.landing:
                    return False
                p.multi()
                p.delete(key)
                p.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
                p.execute()
                return True
            except redis.WatchError:  # written meanwhile: what is here is newer
                return False

    def set_lander(self, plan: str, lander: LanderRecord | None) -> None:
        """The process landing or reverting ``plan`` now (None: nobody), and its lease
        (renewed by :meth:`beat_lander` while it runs)."""
        with self.r.pipeline(transaction=True) as p:
            if lander is None:
                p.hdel(self.keys.change(plan), "lander")
                p.delete(self.keys.change_lander(plan))
            else:
                p.hset(self.keys.change(plan), "lander", lander.to_json())
                p.set(self.keys.change_lander(plan), "1", px=self.ttl_ms)
            p.execute()

    def beat_lander(self, plan: str) -> None:
        """The lander is alive: its lease renewed for a TTL."""
        self.r.set(self.keys.change_lander(plan), "1", px=self.ttl_ms)

    def forget(self, plan: str) -> None:
        self.r.delete(self.keys.change(plan), self.keys.change_forge(plan))

    # -- the repo lease of a landing step -------------------------------------
    def take_lease(self, repo: str, concurrency: int) -> Lease | None:
        """Every slot of ``repo`` (no todo of it runs while it lands), or None."""
        slots = [self.keys.lease(repo, i) for i in range(max(1, concurrency))]
        token = new_token()
        fence = int(lua("change_lease")(self.r, [*slots, self.keys.fence(repo)],
                                        [token, self.ttl_ms]))
        if not fence:
            return None
        return Lease(repo=repo, slot=0, token=token, fence=fence, ttl_ms=self.ttl_ms,
                     namespace=self.keys.namespace, extra=tuple(slots[1:]))

    def step(self, plan: str, lease: Lease, repo: str, rec: StepRecord,
             said: Prepared | None = None) -> bool:
        """The one door of a repo's step: record it, fenced by ``lease``, once
        :data:`coordination.status.STEP_TRANSITIONS` allows the move from the step stored
        now (:class:`TransitionRefused` before anything is written; under the repo's
        lease no other landing or revert writes it, and the fence refuses one that lost
        it), with ``said`` (its event: ``repo.landed``, ``repo.reverted``) in the same
        step; False: the lease was lost (nothing written, nothing said)."""
        raw = self.r.hget(self.keys.change(plan), f"step:{repo}")
        old = StepRecord.from_json(str(raw) if raw is not None else None).state
        why = refused_step(old, rec.state)
        if why:
            raise TransitionRefused(f"change {plan}, repo {repo}: {why}")
        return bool(lua("change_step")(
            self.r, [self.keys.change(plan), lease.key, self.keys.fence(repo),
                     *(said.keys() if said else ())],
            [lease.token, lease.fence, f"step:{repo}", rec.to_json(),
             *(said.args() if said else ("", ""))]))

    # -- the merge train --------------------------------------------------------
    # A sorted set scored by when each change was queued (ZADD NX keeps a change's place):
    # only commands coord's CLI already runs (docs/how-to/acl.md).
    def train(self) -> list[str]:
        return [str(x) for x in self.r.zrange(self.keys.change_train, 0, -1)]

    def enqueue(self, plans: list[str]) -> list[str]:
        """Append the plans not in the train yet, in order; the train after."""
        now = time.time()
        for i, p in enumerate(plans):
            self.r.zadd(self.keys.change_train, {p: now + i * 1e-6}, nx=True)
        return self.train()

    def own(self, plan: str) -> dict[str, str]:
        """A queued change's own candidates per repo (before the train merged those
        ahead of it into its branch)."""
        raw = self.r.hget(self.keys.change(plan), "own")
        return dict(json.loads(raw)) if raw else {}

    def set_own(self, plan: str, own: dict[str, str]) -> None:
        if own:
            self.r.hset(self.keys.change(plan), "own", json.dumps(own))
        else:
            self.r.hdel(self.keys.change(plan), "own")

    def leave_train(self, plan: str) -> None:
        self.r.zrem(self.keys.change_train, plan)
