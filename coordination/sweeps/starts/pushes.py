"""What a sweep a push started runs its pushed repo's todos on, and where it says how
they went: the :class:`~coordination.sweeps.spec.PushSpec` frozen in its spec
(:func:`push_spec`), read by the workers (``workers/pushes.py``: a worktree at the
pushed commit) and by the commit status's posts
(:mod:`coordination.sweeps.notices.commit_status`). Its remote and forge are checked
against the reader's own catalog, never obeyed
(:mod:`coordination.sweeps.starts.push_source`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.sweeps.notices.commit_status import context_of
from coordination.sweeps.spec import PushSpec
from coordination.sweeps.starts.push_source import source_of
from coordination.sweeps.starts.triggers import Trigger

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog


def push_spec(catalog: Catalog, trigger: Trigger, plan: str,
              ui_url: str | None = None) -> PushSpec | None:
    """The push of ``trigger`` as a sweep of ``plan`` keeps it (None: not a push): the
    commit, the repo's remote (``remote:``, else origin) and ``url:``, and, where the
    repo has ``forge:``, the forge (its spec's fields: variable names, never a token)
    and the status's name ``coord/<PLAN>``; ``ui_url``: the web view's address, for the
    status's link. (Its remote and forge are checked, never obeyed: see the module.)"""
    if trigger.get("kind") != "push":
        return None
    name = str(trigger.get("repo") or "")
    src = source_of(catalog, name)
    out: PushSpec = {"repo": name, "branch": str(trigger.get("branch") or ""),
                     "sha": str(trigger.get("sha") or ""),
                     "remote": src.remote if src is not None else "origin",
                     "url": src.url if src is not None else None,
                     "context": context_of(plan), "ui_url": ui_url or None}
    if src is not None and src.forge is not None:
        out["forge"] = dict(src.forge)
    return out
