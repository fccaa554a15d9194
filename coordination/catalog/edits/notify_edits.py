"""Webhook edits (``notify:``), the ``notify`` part of
:class:`~coordination.catalog.manager.CoordinationManager`: list, add and remove a webhook."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import CatalogEdits
from coordination.catalog.edits.document import NOTIFY_KEYS, append_item, new_item, put, remove_index, \
    remove_key
from coordination.catalog.edits.inputs import uniq as _uniq
from coordination.catalog.models import NotifyTarget
from coordination.errors import UsageError
from coordination.jsonable import JSONObject

#: Canonical order of the catalog's top-level keys (a new ``notify:`` goes after
#: ``coordination:``, as DESIGN.md writes it).
TOP_KEYS = ("version", "repos", "resources", "coordination", "notify", "approvers")


class NotifyRemoved(TypedDict):
    """``coord notify remove --json``: the webhook removed, and where it was (1-based)."""

    removed: JSONObject
    index: int


class Notify(CatalogEdits):
    """Webhooks listed, added and removed (``manager.notify``)."""

    def targets(self) -> list[NotifyTarget]:
        """The catalog's webhooks, in file order (`coord notify list` numbers them from 1)."""
        return list(self.reads.catalog().notify)

    @audited("add_notify")
    def add(self, url: str, *, events: Iterable[str] = (), secret_env: str | None = None,
                   format: str | None = None) -> NotifyTarget:
        """Append a webhook to ``notify:``; the loader checks the url, events, secret_env
        and format (its message, nothing written, on a bad one). A url listed already is
        refused: two entries would send every event twice."""
        wanted = _uniq(events)

        def edit(doc: CommentedMap) -> int:
            targets = doc.get("notify")
            urls = [str(t.get("url")) for t in targets or () if isinstance(t, dict)]
            if url in urls:
                raise UsageError(f"a webhook for {url} is in notify: already (#{urls.index(url) + 1})",
                                 hint=f"remove it first (`coord notify remove {urls.index(url) + 1}`)"
                                 " to change it")
            item = new_item(NOTIFY_KEYS, url=url, events=wanted, secret_env=secret_env,
                            format=format)
            if isinstance(targets, CommentedSeq) and targets and not targets.fa.flow_style():
                append_item(targets, item)
            else:  # none yet, or `notify: []`: a block list, as the example writes it
                put(doc, "notify", [*(targets or ()), item], TOP_KEYS)
            return len(urls)

        at = self.store.update(edit)
        return self.reads.catalog().notify[at]

    @audited("remove_notify")
    def remove(self, which: str) -> NotifyRemoved:
        """Take a webhook out of ``notify:``, named by its url or its number in `coord
        notify list` (from 1); an emptied list goes with its key."""

        def edit(doc: CommentedMap) -> tuple[int, NotifyTarget]:
            targets = doc.get("notify")
            urls = [str(t.get("url")) if isinstance(t, dict) else "" for t in targets or ()]
            at = _notify_index(which, urls)
            assert isinstance(targets, CommentedSeq)  # the file loaded: a list of mappings
            gone = NotifyTarget.model_validate(
                {k: list(v) if isinstance(v, list) else v for k, v in targets[at].items()})
            if len(targets) == 1:
                remove_key(doc, "notify")
            else:
                remove_index(targets, at)
            return at, gone

        at, gone = self.store.update(edit)
        return {"removed": gone.model_dump(mode="json"), "index": at + 1}


def _notify_index(which: str, urls: Sequence[str]) -> int:
    """The 0-based index of the webhook ``which`` names: its url, or its number (from 1)."""
    if not urls:
        raise UsageError("the catalog has no webhooks (no notify: entries)",
                         hint="add one with `coord notify add URL`")
    if which.strip().isdigit():
        n = int(which)
        if 1 <= n <= len(urls):
            return n - 1
        raise UsageError(f"no webhook #{n}: notify: has {len(urls)} "
                         f"(numbered 1 to {len(urls)})", hint="`coord notify list` numbers them")
    if which in urls:
        return urls.index(which)
    raise UsageError(f"no webhook with url {which!r} in notify:",
                     hint="name it by its url exactly as listed, or by its number in "
                     "`coord notify list`")
