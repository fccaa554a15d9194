"""What the manager's edit parts share: what each is given (:class:`StoreEdits`,
:class:`CatalogEdits`), an edit whose refusal comes back located by file and line, the
delete of an issue or todo that drops or refuses the references to it, and the read of
what an edit made.

The rules every edit keeps (issues and todos as plans, milestones, dependencies and
repos): each is one :meth:`CatalogStore.update`, so one audit entry, decided on the
document being edited; names and ids it is given must exist (else exit 2 with "did you
mean"); a delete that would leave something pointing at nothing is refused with
:class:`StillReferenced`, naming every referrer by file and line, unless ``force``,
which takes those references out (or, where the referrer cannot exist without it, as a
todo without its repo, deletes the referrer too) in the same edit. New ids come from
:func:`~coordination.catalog.edits.document.new_id_in`: a deleted id never comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.edits.document import (
    Reference,
    StillReferenced,
    drop_references,
    find_item,
    references,
    remove_item,
)
from coordination.catalog.rules.checks import unknown
from coordination.errors import Problem, UsageError

if TYPE_CHECKING:
    from coordination.catalog.file.store import CatalogStore
    from coordination.catalog.reads.queries import CatalogReads

T = TypeVar("T")
M = TypeVar("M")


class StoreEdits:
    """An edit part of the manager given the store alone (``milestones``, ``repos``,
    ``fleet``)."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store


class CatalogEdits(StoreEdits):
    """An edit part given the store and the reads it looks things up with (``issues``,
    ``todos``, ``plans``, ``dependencies``, ``notify``)."""

    def __init__(self, store: CatalogStore, reads: CatalogReads) -> None:
        super().__init__(store)
        self.reads = reads


def refusable(store: CatalogStore, edit: Callable[[CommentedMap], T]) -> T:
    """``store.update(edit)``; a refusal comes back with file and line filled in."""
    try:
        return store.update(edit)
    except StillReferenced as exc:
        raise exc.located(located(store, exc.problems)) from None


def located(store: CatalogStore, problems: list[Problem]) -> list[Problem]:
    """Problems with file, line and field filled in from the catalog as it is now."""
    from coordination.catalog.file import loader  # lazy: only for a refusal

    try:
        text = store.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, UsageError):
        return problems
    return loader.locate(problems, text, str(store.path))


def delete_item(store: CatalogStore, kind: str, id_: str, force: bool) -> list[Reference]:
    """Take the issue or todo out in one edit. While something other than a mirror names
    it, refused with :class:`StillReferenced` listing every referrer, located; with
    ``force`` those references are dropped in the same edit. The mirrors (``blocking``
    entries mirroring its own ``dependencies`` or ``blocked_by``) always go with it.

    Returns every reference dropped, every list the id was taken out of: the
    ``dropped`` of ``coord issue|todo delete --json`` (``[{"id", "kind", "field",
    "plan"?, "mirror"}]``)."""
    name = {"issue": "issues", "todo": "todos"}[kind]

    def edit(doc: CommentedMap) -> list[Reference]:
        find_item(doc, name, id_, kind)  # again: the file may have changed since
        refs = references(doc, id_, kind)
        referrers = [r for r in refs if not r.mirror]
        if referrers and not force:
            raise StillReferenced(id_, referrers)
        drop_references(doc, refs)
        remove_item(doc, name, id_, kind)
        return refs

    return refusable(store, edit)


def found(item: M | None, name: str, names: Callable[[], Iterable[str]], kind: str) -> M:
    """``item``, the one named ``name`` in the catalog read after an edit; else exit 2
    naming the ``names`` there are ("did you mean")."""
    if item is None:
        raise unknown(name, list(names()), kind)
    return item
