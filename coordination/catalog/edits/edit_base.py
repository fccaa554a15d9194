"""What every edit mixin of :class:`~coordination.catalog.manager.CoordinationManager`
stands on: its store, a delete refused for its references, located, and the read of
what an edit made."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.rules.checks import unknown
from coordination.catalog.edits.document import StillReferenced
from coordination.errors import Problem

if TYPE_CHECKING:
    from coordination.catalog.file.store import CatalogStore

T = TypeVar("T")
M = TypeVar("M")


class EditBase:
    """The manager's store, and :meth:`_refusable` for the deletes that may be refused."""

    store: CatalogStore

    def _refusable(self, edit: Callable[[CommentedMap], T]) -> T:
        """``store.update(edit)``; a refusal comes back with file and line filled in."""
        try:
            return self.store.update(edit)
        except StillReferenced as exc:
            raise exc.located(self._located(exc.problems)) from None

    def _located(self, problems: list[Problem]) -> list[Problem]:
        raise NotImplementedError  # CoordinationManager's


def found(item: M | None, name: str, names: Callable[[], Iterable[str]], kind: str) -> M:
    """``item``, the one named ``name`` in the catalog read after an edit; else exit 2
    naming the ``names`` there are ("did you mean")."""
    if item is None:
        raise unknown(name, list(names()), kind)
    return item
