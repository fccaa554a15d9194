"""What each repo's forge settings allow of a merge, read before anything merges
(``land: pr``): a landing one repo would refuse merges nothing.

Per repo with a commit to land, its forge is asked whether its settings would take a
merge into the base by the plan's ``merge_method`` (:meth:`coordination.forge.base.
Forge.merge_refusal`: GitHub's rulesets' ``allowed_merge_methods`` and required linear
history, the classic protection's, and the repository's ``allow_*`` settings; GitLab's
project ``merge_method`` and squash option). A GitHub base whose rulesets require a
merge queue (a ``merge_queue`` rule) refuses no method here: its queue merges by the
rule's own method, and ``land`` enqueues the pull request instead of merging it
(:mod:`coordination.change.pulls.pull_landing`; ``land --dry-run`` and ``change status``
say ``through the merge queue``, from the pull request's forge view:
:mod:`coordination.change.pulls.forge_status`). Each refusal is a blocker of the landing
rule's kind ``forge``, said by ``land`` and ``land --dry-run`` alike; a forge that cannot
be read is one too (fail closed)."""

from __future__ import annotations

from collections.abc import Iterable

from coordination.change.blockers import Blocker
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import ChangePlan
from coordination.errors import ForgeError


def merge_setting_blockers(cp: ChangePlan, forges: ChangeForges,
                           repos: Iterable[str]) -> list[Blocker]:
    """Why a repo of ``repos`` would refuse ``cp``'s merge method (none: each takes it)."""
    method = str(cp.merge_method or "merge")
    out: list[Blocker] = []
    for repo in repos:
        t = cp.targets[repo]
        try:
            why = forges.of(repo).merge_refusal(t.base, method)  # type: ignore[arg-type]
        except ForgeError as exc:
            why = f"its merge settings could not be read: {exc.message}"
        if why:
            out.append(Blocker("forge", repo, f"{why} (nothing is merged in any repo while "
                               "one would refuse)"))
    return out
