"""The records of a change as :mod:`coordination.runtime.changes` stores them, typed.

Each is parsed once, where the store reads it (``from_json``), and written back the
way it was stored (``to_json``): a sealed record keeps the document its seal covers
(``document``: every field as stored, in the order stored), so a reader checks the
seal against exactly what was written, and a record of a later version (a field this
one does not know) round-trips unchanged. The attributes are what the landing rule,
``coord change status`` and the anchors read of it.

    VerifyRecord   ``verify:<TODO>``: how a verify todo last ended, on which set
    SweepPointer   ``sweep``: the plan's last sweep, its run, where each verify todo
                   last started
    TrainDrop      ``dropped``: the candidate set the merge train dropped the change on
    PrepareRecord  ``prepare:<R>``: how the repo's ``prepare:`` last ran in a new worktree
    StepRecord     ``step:<R>``: where the repo is in the change's last landing or revert
    LanderRecord   ``lander``: the process landing or reverting the change now
    PullRecord     ``pr:<R>`` / ``revert_pr:<R>``: the repo's pull request on its forge
                   (``coord change publish``), or the one reverting it
    ForgeView      (``Keys.change_forge``) what the forge said of it last, and when
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def json_object(text: str | None) -> dict[str, Any]:
    """A stored JSON object ({}: none, unreadable, or not an object: a hand edit of
    Redis); every change record, and the change store's own fields, read through it."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _float(v: object) -> float:
    try:
        return float(v or 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


class _Stored:
    """What a record of the change's hash holds: its document as stored, written back
    as it was read."""

    document: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.document)


def _shas(v: object) -> dict[str, str] | None:
    return dict(v) if isinstance(v, dict) else None


@dataclass(frozen=True)
class VerifyRecord(_Stored):
    """How a verify todo last ended (``verify:<TODO>``), sealed (kind ``verify``) about
    :func:`coordination.runtime.changes.verify_about`."""

    #: the record as stored (its seal covers every field but ``sig`` and ``kid``)
    document: dict[str, Any]
    repo: str | None = None
    #: the candidate set it ran on (None: the record names none)
    shas: dict[str, str] | None = None
    #: it passed (``ok`` is true, and nothing else counts as true)
    ok: bool = False
    exit_code: int | None = None
    reason: str | None = None
    #: a failure's last line of output
    last: str | None = None
    #: the sweep and run it ran in, as stored (what its seal is about)
    sweep: Any = None
    run: Any = None
    #: when it was written (0: it does not say)
    at: float = 0.0

    @classmethod
    def of(cls, doc: dict[str, Any]) -> VerifyRecord:
        return cls(doc, repo=doc.get("repo"), shas=_shas(doc.get("shas")),
                   ok=doc.get("ok") is True, exit_code=doc.get("exit_code"),
                   reason=doc.get("reason"), last=doc.get("last"), sweep=doc.get("sweep"),
                   run=doc.get("run"), at=_float(doc.get("at")))

    @classmethod
    def from_json(cls, text: str | None) -> VerifyRecord:
        return cls.of(json_object(text))

    @property
    def ran_in(self) -> tuple[Any, Any]:
        """(sweep, run) it names."""
        return self.sweep, self.run


@dataclass(frozen=True)
class SweepPointer:
    """The plan's sweep pointer (``sweep``), sealed (kind ``sweep``) about
    :func:`coordination.runtime.changes.pointer_about`. Written before it was sealed,
    the field held a bare sweep id: read as an unsigned pointer naming it."""

    #: the pointer as stored ({"sweep": ID} for a bare id; {"sweep": None,
    #: "unreadable": the text's head} for one that is no JSON object)
    document: dict[str, Any]
    #: the plan's last sweep (None: only ``coord todo run``s yet, or unreadable)
    sweep: str | None = None
    #: its run, as stored
    run: Any = None
    #: todo -> [sweep, run]: where each verify todo last started, as stored
    verify: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> SweepPointer:
        sweep, verify = doc.get("sweep"), doc.get("verify")
        return cls(doc, sweep if isinstance(sweep, str) else None, doc.get("run"),
                   dict(verify) if isinstance(verify, dict) else {})

    @classmethod
    def from_json(cls, raw: str | None) -> SweepPointer | None:
        """The pointer as stored, None: there is none."""
        if not raw:
            return None
        if raw.lstrip().startswith("{"):
            d = json_object(raw)
            return cls.of(d if d else {"sweep": None, "unreadable": raw[:80]})
        return cls.of({"sweep": raw})

    def to_json(self) -> str:
        return json.dumps(self.document, sort_keys=True)

    def started_in(self, todo: str) -> tuple[str, int] | None:
        """The (sweep, run) it says verify todo ``todo`` last started in."""
        at = self.verify.get(todo)
        if isinstance(at, list) and len(at) == 2 and isinstance(at[0], str):
            try:
                return at[0], int(at[1])
            except (TypeError, ValueError):
                return None
        return None


@dataclass(frozen=True)
class TrainDrop(_Stored):
    """Where the merge train dropped the change (``dropped``)."""

    document: dict[str, Any]
    #: the candidate set it was dropped on, as stored
    shas: Any = None
    #: when (None: a drop written before 0.4 kept it, or unreadable)
    at: float | None = None

    @classmethod
    def from_json(cls, text: str | None) -> TrainDrop | None:
        """None: not dropped (or the field is no JSON object)."""
        if not text:
            return None
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            return None
        try:
            at: float | None = float(doc["at"])
        except (KeyError, TypeError, ValueError):
            at = None
        return cls(doc, doc.get("shas"), at)


@dataclass(frozen=True)
class PrepareRecord(_Stored):
    """How a repo's ``prepare:`` command last ran in a new worktree of the change
    (``prepare:<R>``)."""

    #: the record as stored (what ``coord change status --json`` shows of it)
    document: dict[str, Any]
    command: str | None = None
    ok: bool = False
    exit_code: int | None = None
    #: the tail of its output
    output: str = ""
    worktree: str | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> PrepareRecord:
        return cls(doc, doc.get("command"), bool(doc.get("ok")), doc.get("exit_code"),
                   str(doc.get("output") or ""), doc.get("worktree"))

    @classmethod
    def from_json(cls, text: str | None) -> PrepareRecord:
        return cls.of(json_object(text))


#: Who a step written by ``coord change revert`` says it is by (``by``): the landing's
#: own undo's steps say none, and only this command's are landed again when it fails.
REVERT_COMMAND = "change revert"
#: ... and one of ``coord change revert`` by a revert pull request (``land: pr``).
REVERT_PR = "change revert (pull request)"


@dataclass(frozen=True)
class StepRecord(_Stored):
    """A repo's step in the change's last landing or revert (``step:<R>``), written
    under the repo's lease (:meth:`coordination.runtime.changes.ChangeStore.step`).
    A field that is no JSON object reads as an empty step (one that says nothing), as
    one that is no JSON at all always did."""

    #: the step as stored (every field, in the order written)
    document: dict[str, Any]
    #: a :class:`coordination.status.StepState`, as stored (None: the step says none;
    #: a state this version does not know: as stored)
    state: str | None = None
    #: what landed on the repo's base
    landed: str | None = None
    #: what the base was under it (a revert's "before")
    pre: str | None = None
    #: the base a revert was made over
    over: str | None = None
    #: the revert commit
    revert: str | None = None
    #: who wrote it (:data:`REVERT_COMMAND`; None: a landing or its own undo)
    by: str | None = None
    #: the git identity a revert is by
    ident: str | None = None
    why: str | None = None
    #: a landing again over a refused revert: its commit, and the base it was made over
    reland: str | None = None
    reland_over: str | None = None
    #: landed again over a refused revert
    relanded: bool | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> StepRecord:
        return cls(doc, **{f: doc.get(f) for f in _STEP_FIELDS})

    @classmethod
    def new(cls, *, state: str | None = None, landed: str | None = None,
            pre: str | None = None, over: str | None = None, revert: str | None = None,
            by: str | None = None, ident: str | None = None, why: str | None = None,
            relanded: bool | None = None) -> StepRecord:
        """A step to write: the fields given (None: not written), in the one order
        every step is written in."""
        given = {"state": state, "landed": landed, "pre": pre, "over": over,
                 "revert": revert, "by": by, "ident": ident, "why": why, "relanded": relanded}
        return cls.of({k: v for k, v in given.items() if v is not None})

    @classmethod
    def from_json(cls, text: str | None) -> StepRecord:
        return cls.of(json_object(text))

    @property
    def empty(self) -> bool:
        """It says nothing (none recorded, or a field no JSON object)."""
        return not self.document

    def but(self, **changes: str | None) -> StepRecord:
        """This step with ``changes`` (a field it has keeps its place; a new one goes
        last), everything else as stored."""
        return StepRecord.of({**self.document, **changes})

    def without(self, *names: str) -> StepRecord:
        """This step less the fields ``names``."""
        return StepRecord.of({k: v for k, v in self.document.items() if k not in names})


_STEP_FIELDS = ("state", "landed", "pre", "over", "revert", "by", "ident", "why", "reland",
                "reland_over", "relanded")


@dataclass(frozen=True)
class LanderRecord(_Stored):
    """The process landing or reverting the change now (``lander``): written when it
    starts or carries one on, gone once it ends. One that is no JSON object, or an
    empty one, reads as none."""

    #: the record as stored (what :func:`coordination.processes.ended` judges)
    document: dict[str, Any]
    host: str | None = None
    pid: int | None = None
    #: its process's start time, as :func:`coordination.processes.start_time` says it
    started: str | None = None
    #: land | revert
    op: str | None = None
    at: float | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> LanderRecord:
        return cls(doc, doc.get("host"), doc.get("pid"), doc.get("started"), doc.get("op"),
                   doc.get("at"))

    @classmethod
    def from_json(cls, text: str | None) -> LanderRecord | None:
        """None: no lander (or the field is no JSON object, or an empty one)."""
        doc = json_object(text)
        return cls.of(doc) if doc else None


@dataclass(frozen=True)
class PullRecord(_Stored):
    """A repo's pull (merge) request on its forge, as coord opened or adopted it
    (``pr:<R>``; a revert's: ``revert_pr:<R>``). What the forge says of it *now*
    (state, reviews, checks) is never kept here: it is read from the forge, or from the
    view a webhook or a recent read left (:mod:`coordination.runtime.forge_views`)."""

    #: the record as stored (every field, in the order written)
    document: dict[str, Any]
    #: the forge's kind (github, gitlab, gitea, stub) and the project, as published
    kind: str = ""
    project: str = ""
    #: GitHub's and Gitea's number, GitLab's iid (0: the record names none)
    number: int = 0
    url: str = ""
    #: the change branch it is from, and the base it is into
    branch: str = ""
    base: str = ""
    #: the commit coord last pushed to its branch (what the PR's head should be)
    head: str = ""
    #: the commit coord's ``coord/verify`` status was last posted on, and its state
    status_sha: str | None = None
    status: str | None = None
    #: ``publish`` (opened by coord), ``adopted`` (a PR opened by hand, named with
    #: ``--pr``), ``revert`` (a revert pull request of ``coord change revert``)
    by: str = "publish"
    at: float = 0.0

    @classmethod
    def of(cls, doc: dict[str, Any]) -> PullRecord:
        def text(name: str) -> str:
            v = doc.get(name)
            return v if isinstance(v, str) else ""

        try:
            number = int(doc.get("number") or 0)
        except (TypeError, ValueError):
            number = 0
        return cls(doc, text("kind"), text("project"), number, text("url"), text("branch"),
                   text("base"), text("head"), doc.get("status_sha") or None,
                   doc.get("status") or None, text("by") or "publish", _float(doc.get("at")))

    @classmethod
    def new(cls, *, kind: str, project: str, number: int, url: str, branch: str, base: str,
            head: str, by: str = "publish", status_sha: str | None = None,
            status: str | None = None, at: float = 0.0) -> PullRecord:
        doc: dict[str, Any] = {"kind": kind, "project": project, "number": int(number),
                               "url": url, "branch": branch, "base": base, "head": head,
                               "by": by, "at": at}
        if status_sha:
            doc["status_sha"], doc["status"] = status_sha, status
        return cls.of(doc)

    @classmethod
    def from_json(cls, text: str | None) -> PullRecord | None:
        """None: no record (or one that names no pull request)."""
        rec = cls.of(json_object(text))
        return rec if rec.number > 0 else None

    def but(self, **changes: object) -> PullRecord:
        """This record with ``changes`` (None: the field dropped)."""
        doc = {**self.document, **changes}
        return PullRecord.of({k: v for k, v in doc.items() if v is not None})

    @property
    def ref(self) -> str:
        """``project#number`` (GitLab says ``!number``; coord says ``#`` everywhere)."""
        return f"{self.project}#{self.number}"


@dataclass(frozen=True)
class ForgeView:
    """What a repo's forge said of its pull request last (``Keys.change_forge``): the
    view's ``document`` (:class:`coordination.change.pulls.forge_status.PullView` made it),
    when it was read, and from where: ``poll`` (a status read asked the forge),
    ``webhook`` (an event made it read again), ``land`` (a landing's own read)."""

    document: dict[str, Any]
    at: float = 0.0
    source: str = "poll"
    #: the record as stored (its seal, kind ``forge``, covers every field but ``sig``
    #: and ``kid``: :meth:`coordination.runtime.changes.ChangeStore.checked_forge_views`)
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, text: str | None) -> ForgeView | None:
        doc = json_object(text)
        view = doc.get("view")
        if not isinstance(view, dict):
            return None
        return cls(view, _float(doc.get("at")), str(doc.get("source") or "poll"), doc)

    def body(self) -> dict[str, Any]:
        """What is stored (and sealed) of it."""
        return {"view": self.document, "at": self.at, "source": self.source}

    def to_json(self) -> str:
        return json.dumps(self.record or self.body())
