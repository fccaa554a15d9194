"""A person's repos bound what its CLI does to a sweep (issue 78, "person users scoped by
repo").

A person's Redis user (``coord acl --person NAME --repos SEL``) may write only the
sweeps of the plans and todos that run its repos' todos (key patterns by sweep id:
:mod:`coordination.runtime.acl`): pausing, unpausing, cancelling, resuming or rolling
back another repo's sweep, or reading its logs, is refused by Redis (NOPERM) at its
first command on that sweep, before anything changes. This module refuses it first,
saying why, before coord sends anything: a CLI whose ``COORD_REDIS_URL`` names a
person's user reads what that user was given (its scope record, written with the user)
and refuses (exit 2, nothing changed) a sweep that runs none of its repos' todos, a
start of a plan that runs another repo's, and anything at all where the record is
missing or cannot be read (fail closed: write the user again). Any other user (the
supervisor, a worker's, the default user) is left to its ACL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import SweepRecord
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec

if TYPE_CHECKING:
    from coordination.runtime.acl import PersonScope

#: What a person observer may do to a sweep: read it (its logs too).
READS = frozenset({"read the logs of"})


def person_scope(rt: Runtime) -> PersonScope | None:
    """What the person this CLI runs as (its ``COORD_REDIS_URL``'s user) was given; None
    when that user is no person's. A person's user with no readable record: exit 2."""
    user = unquote(urlsplit(rt.settings.redis_url or "").username or "")
    if not user:  # (the default user: no person's)
        return None
    # lazy: runtime.acl loads connection.preflight and the settings model, off `sweep
    # status`'s path; only a URL naming an ACL user pays it
    from coordination.runtime.acl import person_of, scope_key, scope_of

    name = person_of(user)
    if name is None:
        return None
    found = scope_of(rt, name)
    if found is None:
        raise UsageError(
            f"Redis user {user} is a person's, and no record says which repos it was given "
            f"({scope_key(rt, name)} is missing or unreadable): coord refuses to steer "
            "or read sweeps as it; nothing was changed",
            hint=f"an admin writes the user again: coord acl --person {name} --repos "
                 "SELECTOR [--role operator] --apply")
    return found


def _repos(spec: SweepSpec | None) -> list[str]:
    return sorted({t.repo for t in spec.todos.values() if t.repo}) if spec else []


def refuse_outside(rt: Runtime, sweep_id: str, verb: str,
                   rec: SweepRecord | None = None) -> None:
    """Refuse (exit 2) ``verb`` (``pause``, ``cancel``, ``read the logs of``...) on a
    sweep that runs none of the person's repos' todos, or is not one of the sweeps its
    user may write; nothing for a user that is no person's."""
    scope = person_scope(rt)
    if scope is None:
        return
    if scope.role != "operator" and verb not in READS:
        raise UsageError(
            f"{scope.user} is an observer (repos {', '.join(scope.repos) or 'none'}): it "
            f"may read sweeps, not {verb} them; nothing was changed",
            hint="an admin gives it --role operator: coord acl --person "
                 f"{scope.name} --repos SELECTOR --role operator --apply")
    repos = _repos(load_spec(rt, sweep_id, rec))
    mine = sorted(set(repos) & set(scope.repos))
    if mine and scope.covers(sweep_id):
        return
    if not mine:
        why = (f"it runs todos of {', '.join(repos)}, none of them {scope.user}'s"
               if repos else "no todo of it is known to run one of its repos")
    else:
        why = ("its sweeps are not among those the user may write (an ad-hoc `coord run`, "
               "or a plan given to the repos after the user was written)")
    raise UsageError(
        f"{scope.user} (repos {', '.join(scope.repos) or 'none'}) may not {verb} sweep "
        f"{sweep_id}: {why}; nothing was changed",
        hint="ask someone whose user has those repos; an admin can write the user again "
             f"with coord acl --person {scope.name} --repos SELECTOR --apply")


def refuse_start(rt: Runtime, spec: SweepSpec, sweep_id: str) -> None:
    """Refuse (exit 2) a person's start of a sweep that runs another repo's todos, or
    whose keys its user may not write (an ad-hoc run); nothing for others."""
    scope = person_scope(rt)
    if scope is None:
        return
    what = spec.plan or sweep_id
    if scope.role != "operator":
        raise UsageError(f"{scope.user} is an observer: it may not start sweeps ({what}); "
                         "nothing was started",
                         hint=f"an admin gives it --role operator: coord acl --person "
                              f"{scope.name} --repos SELECTOR --role operator --apply")
    outside = sorted(set(_repos(spec)) - set(scope.repos))
    if outside:
        raise UsageError(
            f"{scope.user} (repos {', '.join(scope.repos) or 'none'}) may not start {what}: "
            f"it runs todos of {', '.join(outside)}; nothing was started",
            hint="start it as a user with those repos")
    if not scope.covers(sweep_id):
        raise UsageError(
            f"{scope.user} may not start {what}: its sweeps are not among those the user "
            "may write (an ad-hoc `coord run`, or a plan given to its repos after the user "
            "was written); nothing was started",
            hint=f"an admin writes the user again: coord acl --person {scope.name} "
                 "--repos SELECTOR --role operator --apply")


def readable(rt: Runtime, sweep_ids: list[str]) -> list[str]:
    """Of ``sweep_ids``, those whose logs this CLI's user may read (all, for a user
    that is no person's)."""
    scope = person_scope(rt)
    if scope is None:
        return sweep_ids
    return [s for s in sweep_ids if scope.covers(s)]
