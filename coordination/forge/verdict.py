"""Why a forge would not merge a pull request, in coord's words: one pure function over
what every kind reads (the pull request, its reviews, the checks of its head, whether
it conflicts), so each kind names a missing review, a failing check or a conflict the
same way. Whether it *is* mergeable stays the forge's own verdict (each kind's
``mergeability``); these are the reasons shown beside it."""

from __future__ import annotations

from coordination.errors import HeadMoved, MergeRefused
from coordination.forge.base import Blocker, Checks, CheckState, Kind, PullRequest, Reviews

_CHECK_WORDS = {CheckState.failure: "failed", CheckState.pending: "is still running",
                CheckState.missing: "has not reported on this head"}


def blockers(pr: PullRequest, reviews: Reviews, checks: Checks | None,
             conflict: bool | None, *, behind: bool = False) -> tuple[Blocker, ...]:
    """Every reason coord can name, in the order a person would fix them."""
    out: list[Blocker] = []
    if not pr.is_open:
        out.append(Blocker("state", f"#{pr.number} is {pr.state.value}, not open"))
        return tuple(out)
    if pr.draft:
        out.append(Blocker("draft", f"#{pr.number} is a draft"))
    if conflict:
        out.append(Blocker("conflict", f"#{pr.number} conflicts with {pr.base_branch}"))
    if behind:
        out.append(Blocker("behind", f"#{pr.number} is behind {pr.base_branch} and its "
                                     "protection wants it up to date"))
    for who in reviews.changes_requested_by:
        out.append(Blocker("changes_requested", f"{who} requested changes", name=who))
    left = reviews.approvals_left
    if left is None and reviews.required is not None:
        left = reviews.required - reviews.approvals
    if left is not None and left > 0:
        need = f"{left} more approving review" + ("s" if left > 1 else "")
        have = f" ({reviews.approvals} of {reviews.required})" if reviews.required else ""
        out.append(Blocker("review", f"needs {need}{have}"))
    for check in checks.failing() if checks is not None else ():
        out.append(Blocker("check", f"required check {check.name!r} "
                                    f"{_CHECK_WORDS.get(check.state, check.state.value)}",
                           name=check.name))
    return tuple(out)


def forge_says_no(pr: PullRequest, found: tuple[Blocker, ...], forge_state: str,
                  kind: str) -> tuple[Blocker, ...]:
    """``found``, or when the forge refuses for a reason coord did not name, one
    ``forge`` blocker quoting its own word."""
    if found:
        return found
    return (Blocker("forge", f"{kind} will not merge #{pr.number} now ({forge_state})"),)


def head_moved(where: str, number: int, expected: str, actual: str | None, kind: Kind,
               project: str, status: int | None = None) -> HeadMoved:
    """The error for a merge refused because the head is not the verified commit."""
    now = actual[:12] if actual else "another commit"
    return HeadMoved(f"{where}: its head moved to {now}, not the verified {expected[:12]}; "
                     "nothing merged", number=number, expected=expected, actual=actual,
                     forge=kind, project=project, status=status,
                     hint="verify the change again on its new head")


def not_open(where: str, pr: PullRequest, kind: Kind, project: str) -> MergeRefused:
    """The error for a merge of a pull request that is closed or merged already (by
    hand, or by another landing): reported, never merged over."""
    return MergeRefused(f"{where} is {pr.state.value}: nothing to merge", number=pr.number,
                        reason=f"the pull request is {pr.state.value}", forge=kind,
                        project=project)
