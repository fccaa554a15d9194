"""A pull request merged through its base's merge queue (GitHub: a ruleset's
``merge_queue`` rule; GitLab: a project that runs merge trains): what a landing
(:mod:`coordination.change.pulls.pull_landing`) and a revert
(:mod:`coordination.change.pulls.pull_revert`) share.

:func:`through_queue` adds the pull request to the queue pinned to the commit coord
verified (GitHub: GraphQL ``enqueuePullRequest`` with ``expectedHeadOid``; GitLab: the
merge request with ``auto_merge`` and ``sha``) unless it is in the queue already (a
landing or revert cut off, run again: never enqueued twice), then waits, polling the
queue's entry (one read each: the entry, the pull request's state, head and merge)
until the queue merged it at that commit or removed it unmerged (why, naming the
entry's last state and the forge's reason when it gives one). A queue still busy after
:data:`QUEUE_WAIT` seconds raises ``OperationFailed``: the command run again carries on.

:func:`in_queue` is what a run carried on asks first: a forge may call a queued pull
request not mergeable (its checks run in the queue, GitLab's ``ci_still_running``;
GitHub's ``mergeable_state`` is a free word), while the queue may still merge it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from coordination.change.blockers import short
from coordination.errors import ForgeError, HeadMoved, MergeRefused, OperationFailed
from coordination.forge.base import Forge, QueueEntry, QueueKind

log = logging.getLogger(__name__)

#: How long a landing or revert waits for a merge queue to merge or remove one pull
#: request; it asks first after ``poll`` s (``COORD_MERGE_QUEUE_POLL``), each wait after
#: doubled, up to QUEUE_POLL_MAX times ``poll``.
QUEUE_WAIT = 4 * 3600.0
QUEUE_POLL_MAX = 15

#: How each kind of merge queue is named in what a landing or revert says.
QUEUE_NAMES = {"merge_queue": "merge queue", "merge_train": "merge train"}


def forge_refused(ref: str, sha: str, exc: ForgeError, done: str, verb: str,
                  doing: str) -> str:
    """Why it stops when the forge would not merge (or enqueue) the pull request
    ``ref`` pinned to ``sha``: its head moved (``HeadMoved``), the forge refused
    (``MergeRefused``, in its words), or the request failed."""
    if isinstance(exc, HeadMoved):
        return (f"{ref}: its head moved to {short(exc.actual)} since coord verified "
                f"{short(sha)}: not {done}")
    if isinstance(exc, MergeRefused):
        return f"{ref}: the forge refused to {verb}: {exc.reason}"
    return f"{ref}: {doing} failed: {exc.message}"


def in_queue(forge: Forge, number: int) -> QueueEntry | None:
    """The pull request's entry when it is in its base's queue now, or merged (by the
    queue since the forge was asked whether it merges); None: neither, or the entry
    could not be read."""
    try:
        entry = forge.queue_entry(number)
    except ForgeError as exc:
        log.warning("#%s: its merge queue entry could not be read: %s", number, exc.message)
        return None
    return entry if entry.queued or entry.merged else None


def through_queue(forge: Forge, number: int, sha: str, ref: str, kind: QueueKind, *,
                  again: str, poll: float, entry: QueueEntry | None = None
                  ) -> tuple[QueueEntry | None, str | None]:
    """Enqueue pull request ``number`` pinned to ``sha`` (unless it is queued already:
    ``entry``, or as its entry reads now) and wait until the queue merged it: (its
    entry, merged at ``sha``, its ``merge_sha`` the commit left on the base, None), or
    removed it: (None, why it is not merged). ``again``: the command that carries on
    once the wait ran out; ``poll``: seconds before it first asks the queue again."""
    name = QUEUE_NAMES[kind]
    if entry is None:
        try:
            entry = forge.queue_entry(number)
            if not entry.queued and not entry.merged:
                entry = forge.enqueue(number, sha=sha)
                log.info("%s: added to the %s at %s (position %s)", ref, name, short(sha),
                         entry.position)
        except ForgeError as exc:
            return None, forge_refused(ref, sha, exc, "enqueued", f"add it to the {name}",
                                       f"adding it to the {name}")
    entry, seen = _wait(forge, entry, ref, name, again, poll)
    if not entry.merged:
        said = f" ({entry.reason})" if entry.reason else ""
        return None, (f"{ref} left the {name} unmerged (its entry was last "
                      f"{seen.state or 'unknown'}; the pull request is "
                      f"{(entry.pr_state or 'open').lower()}){said}: the {name} removed it "
                      "(a failed check or a conflict in it) or someone did; not merged")
    if entry.head_sha is None:  # (a forge whose entry does not say: read it)
        merged = forge.get_pr(number)
        entry = replace(entry, head_sha=merged.head_sha, merge_sha=merged.merge_sha)
    if entry.head_sha != sha:
        return None, (f"{ref} was merged at {short(entry.head_sha)}, not the verified "
                      f"{short(sha)}")
    return entry, None


def _wait(forge: Forge, entry: QueueEntry, ref: str, name: str,
          again: str, poll: float) -> tuple[QueueEntry, QueueEntry]:
    """Poll the entry until it is merged or out of the queue: (it now, as it was read
    the time before)."""
    deadline, delay, seen = time.monotonic() + QUEUE_WAIT, poll, entry
    while not entry.merged and entry.queued:
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"{ref}: still in the {name} ({entry.state}, position "
                f"{entry.position or 'unsaid'}) after {QUEUE_WAIT:g}s",
                hint=f"{again} again carries on (it is not enqueued twice)")
        time.sleep(delay)
        delay = min(delay * 2, poll * QUEUE_POLL_MAX)
        seen = entry
        try:
            entry = forge.queue_entry(entry.number)
        except ForgeError as exc:
            log.warning("%s: its %s entry could not be read: %s", ref, name, exc.message)
    return entry, seen
