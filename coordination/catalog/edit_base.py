"""What every edit mixin of :class:`~coordination.catalog.manager.CoordinationManager`
stands on: its store, and a delete refused for its references, located."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.edits import StillReferenced
from coordination.errors import Problem

if TYPE_CHECKING:
    from coordination.catalog.store import CatalogStore

T = TypeVar("T")


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
