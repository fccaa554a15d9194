"""CI integration: a sweep a push started posts the commit status ``coord/<PLAN>`` on the
pushed commit, where the pushed repo has ``forge:`` (branch protection may require it).

- **pending** when a run starts (:func:`run_starts`): by its starter, before the run is
  recorded, so nothing of the run (nor a supervision pass carrying on a slow starter's
  run) starts, let alone ends, before it: a pending never lands after the run's final
  word. A starter that dies between the post and the record leaves a pending with no
  run (the trigger run again replaces it).
- **success** or **failure** when the run ends (:func:`run_ended`): from the one place a
  run's end is kept and said, :func:`coordination.sweeps.recording.ended`, before the
  sweep is taken off the active ones. Whoever ends the run posts it (the worker that
  finished its last todo, a cancel, a deadline); an ender that dies first leaves the
  sweep listed, and the supervision pass that says its end posts it then. So the final
  word is posted at least once, never lost. Once posted, the record says so
  (``status_posted``: the run) and a later ender of that run posts nothing; two at once
  (a pass that came while a slow ender posted) post the same word (a commit status is
  replaced, never added to). A word for a run the sweep moved on from (a resume
  started) is not posted.

Success means the run succeeded; anything else (failed, cancelled, rolled back...) is a
failure. Its link (``target_url``) is the sweep's page in the web view, when
``COORD_UI_URL`` said where that is to the process that started the sweep (frozen in
the spec, with the commit and the forge, so every process posts the same). A spec that
fails its signature check posts nothing at its end (its forge's API is no place to send
a token to on a keyless writer's word).

A forge that is down, refuses or takes too long (:data:`TIMEOUT` a try, two tries)
never fails nor holds the sweep: it is said (its log and a ``commit_status.failed``
event in the sweep's stream) and the sweep goes on. The token is read from the posting process's
environment (the forge's ``token_env``): the workers' and the starter's.

**The forge is the poster's catalog's, never the spec's** (:func:`post`). Without a
signing key anyone who can write to Redis can rewrite a stored spec, and a spec's
forge says where the token goes and which variable is the token. So each poster reads
the pushed repo's ``forge:`` from its own catalog file (``Runtime.own_catalog``: the
one it was started with; a worker's, ``coord worker FILE``) and posts only when the
spec's forge is that one, field for field; the status's name must be coord's own
(``coord/...``). Otherwise nothing is posted, to either forge, and the refusal is said
as a forge that failed is, naming the fields that differ: refused rather than posted
to the catalog's forge, since a spec that was changed vouches for nothing (its
commit, its result), and an honest change of the catalog since the start costs one
status, said, that a new push or ``coord trigger push`` posts again. A poster with no
catalog of its own, or whose catalog no longer has the repo or its ``forge:``, posts
nothing (said). See :mod:`coordination.sweeps.starts.push_source`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from coordination.status import SWEEP_LIVE, EventKind, SweepStatus
from coordination.sweeps.spec import PushSpec, SweepSpec

if TYPE_CHECKING:
    from coordination.runtime.context import Runtime

log = logging.getLogger("coord.push")

#: Seconds one try of a post may take (one retry after a dropped connection or a 5xx:
#: a forge that hangs holds the run's start or end about twice this, once).
TIMEOUT = 5.0
#: The commit status a push's sweep posts: branch protection requires it by this name.
CONTEXT = "coord/{plan}"


def context_of(plan: str) -> str:
    return CONTEXT.format(plan=plan)


def run_starts(rt: Runtime, spec: SweepSpec) -> bool:
    """``pending`` on the pushed commit, as a run of ``spec`` starts (see the module);
    True if posted."""
    if not _posts(spec.push):
        return False
    return post(rt, spec.sweep_id, cast("PushSpec", spec.push), "pending",
                f"sweep {spec.sweep_id} is running")


def run_ended(rt: Runtime, sweep_id: str, run: int) -> bool:
    """``success`` or ``failure`` on the pushed commit, as run ``run`` of the sweep ended
    (see the module); True if posted. Nothing for a sweep no push started, nor for a
    run the sweep moved on from."""
    rec = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "trigger", "run", "reason",
                                                     "status_posted"))
    if rec is None:
        return False
    trigger = rec.get("trigger")
    if not isinstance(trigger, dict) or trigger.get("kind") != "push":
        return False  # (the record's trigger: no spec read for any other sweep's end)
    status = rec.get("status")
    if status in SWEEP_LIVE or int(str(rec.get("run") or 0)) != run:
        return False
    if rec.get("status_posted") == run:
        return False  # (posted by an ender of this run that got further)
    from coordination.sweeps.spec_store import load_checked  # lazy: a push's sweep only

    checked = load_checked(rt, sweep_id, rec)
    spec = checked.spec if checked is not None else None
    if spec is None or not _posts(spec.push):
        return False
    if checked is not None and checked.refusal is not None:
        # a spec that fails its check names no forge coord's token may be sent to
        log.warning("sweep %s: no commit status posted: %s", sweep_id, checked.refusal)
        return False
    ok = status == SweepStatus.succeeded
    reason = str(rec.get("reason") or status)
    if not post(rt, sweep_id, cast("PushSpec", spec.push), "success" if ok else "failure",
                f"sweep {sweep_id} {status}: {reason}"):
        return False
    # After the post, never before: an ender that dies between leaves it unmarked, and
    # the pass that says the end posts it again (the same word)
    # (a swap: of a record that still exists, never one a retention dropped meanwhile)
    rt.checkpoints.swap_sweep_field(sweep_id, "status_posted", rec.get("status_posted"), run)
    return True


def target_url(push: PushSpec, sweep_id: str) -> str | None:
    """The status's link: the sweep's page in the web view (None: no ``COORD_UI_URL``)."""
    ui = push.get("ui_url")
    return f"{ui.rstrip('/')}/sweeps/{sweep_id}" if ui else None


def _posts(push: PushSpec | None) -> bool:
    return bool(push and push.get("forge") and push.get("sha"))


def post(rt: Runtime, sweep_id: str, push: PushSpec, state: str, description: str) -> bool:
    """Post ``state`` on the pushed commit, to the forge this process's own catalog names
    for the repo (and only when the spec names that very forge: see the module); a
    refusal or a forge that fails is said, never raised."""
    context = str(push.get("context") or "coord")
    forge_fields = _own_forge(rt, push, context)
    if isinstance(forge_fields, str):
        return _not_posted(rt, sweep_id, push, context, state, forge_fields)
    # lazy: the forge's client (httpx) loads for a push's sweep only
    from coordination.forge import open_forge
    # lazy: its records too (30 ms of dataclasses made at import), which every sweep's
    # command (`plan sweep`, through sweeps.progress) would pay for otherwise
    from coordination.forge.base import CommitStatus, ForgeSpec, Options, StatusState

    try:
        given = {k: v for k, v in forge_fields.items() if v is not None}
        spec = ForgeSpec(**given)  # type: ignore[arg-type]
        forge = open_forge(spec, options=Options(timeout=TIMEOUT, deadline=TIMEOUT, retries=1))
        forge.post_status(push["sha"], CommitStatus(
            state=StatusState(state), context=context, description=description[:140],
            target_url=target_url(push, sweep_id)))
    except Exception as exc:  # noqa: BLE001 - a forge never fails nor holds the sweep
        why = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return _not_posted(rt, sweep_id, push, context, state, str(why))
    log.info("sweep %s: %s %s posted on %s of %s", sweep_id, context, state, push["sha"],
             push["repo"])
    return True


def _own_forge(rt: Runtime, push: PushSpec, context: str) -> dict[str, str | None] | str:
    """The forge to post to: the pushed repo's in this process's own catalog, when the
    spec names the same; else why nothing is posted."""
    # lazy: a push's post only (the catalog's store with it)
    from coordination.sweeps.starts.push_source import differences, own_source

    if not context.startswith(CONTEXT.format(plan="")):
        return (f"its status {context!r} is not one of coord's ({context_of('PLAN')}): "
                "the spec was changed")
    src = own_source(rt.own_catalog, str(push.get("repo") or ""))
    if isinstance(src, str):
        return f"{src}: a forge is taken from it, never from the spec"
    if src.forge is None:
        return (f"repo {push.get('repo')!r} has no forge: in its catalog {rt.own_catalog} "
                "(a forge is taken from it, never from the spec)")
    differ = differences(push, src, ("forge",))
    if differ:
        return ("the spec's forge is not the catalog's (" + "; ".join(differ) + f"; catalog "
                f"{rt.own_catalog}): a forge is taken from the catalog, never from a spec "
                "that may have been changed in Redis")
    return src.forge


def _not_posted(rt: Runtime, sweep_id: str, push: PushSpec, context: str, state: str,
                why: str) -> bool:
    """Said: the log and a ``commit_status.failed`` event of the sweep; False."""
    log.warning("sweep %s: %s %s on %s of %s was not posted: %s", sweep_id, context,
                state, push.get("sha"), push.get("repo"), why)
    try:
        rt.events.emit(EventKind.commit_status_failed, sweep_id=sweep_id,
                       repo=push.get("repo"), sha=push.get("sha"), context=context,
                       state=state, reason=why[:500])
    except Exception as said:  # noqa: BLE001 - the log line above said it
        log.warning("the commit_status.failed event was not written: %s", said)
    return False
