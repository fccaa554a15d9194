"""A reason a change may not land, as the landing rule (:mod:`coordination.change.rule`)
tells it: its kind, what it is about, and why, said so a person knows what to run next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``forge``: what a repo's forge says of its pull request (``land: pr``)
BlockerKind = Literal["verify", "gate", "repo", "run", "train", "evidence", "state", "forge"]


@dataclass(frozen=True)
class Blocker:
    kind: BlockerKind
    id: str  # a todo id, a repo name, or the plan (train)
    why: str

    def document(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "why": self.why}

    def __str__(self) -> str:
        return f"{self.id}: {self.why}"


def short(sha: str | None) -> str:
    """A commit as a blocker names it."""
    return (sha or "nothing")[:12]


def listed(items: list[str], most: int = 3) -> str:
    """The first ``most`` of ``items``, and how many more."""
    return ", ".join(items[:most]) + (f", and {len(items) - most} more" if len(items) > most
                                      else "")
