"""`coord dep check --create-todos`: a todo for each unsatisfied dependency.

Each todo is in the consumer's repo (it is the consumer that must change: bump its
constraint, or wait for the provider) and carries the label ``dep:<DEP id>``, which
is how a later run finds it again: while a todo with that label is not completed,
no other is made (idempotent). One that was completed and the dependency broke
again gets a new one. Every todo of one run is made in one catalog edit, decided
on the document under the catalog's lock (two runs at once make one todo), so
one audit entry names them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypedDict

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.runs.depcheck import SKIPPED, UNSATISFIED, CheckResult
from coordination.catalog.edits.document import TODO_KEYS, append_item, new_id_in, new_item, section
from coordination.catalog.models import Catalog, Dependency, TodoStatus


#: The label that ties a todo to the dependency it fixes.
LABEL_PREFIX = "dep:"


class DepTodo(TypedDict):
    dependency: str
    todo: str
    repo: str
    created: bool  # False: an open todo with its label was there already


def label(dep_id: str) -> str:
    return f"{LABEL_PREFIX}{dep_id}"


def task_of(dep: Dependency, reason: str) -> str:
    """The new todo's task: what is wrong, in one line."""
    want = f" {dep.version_constraint}" if dep.version_constraint else ""
    why = f": {reason}" if reason else ""
    return (f"Fix unsatisfied dependency {dep.id} ({dep.consumer} needs {dep.provider}"
            f"{want}){why}")[:300]


def _open_with_label(doc: CommentedMap, tag: str) -> tuple[str, str] | None:
    """(id, repo) of the first todo carrying ``tag`` that is not completed."""
    for item in section(doc, "todos"):
        if not isinstance(item, CommentedMap):
            continue
        if tag in (item.get("labels") or ()) and \
                str(item.get("status") or "pending") != TodoStatus.completed.value:
            return str(item.get("id")), str(item.get("repo"))
    return None


def edit(catalog_path: str, wanted: list[tuple[Dependency, str]]
         ) -> Callable[[CommentedMap], list[DepTodo]]:
    """The catalog edit making (or finding) a todo per ``(dependency, reason)``."""

    def apply(doc: CommentedMap) -> list[DepTodo]:
        out: list[DepTodo] = []
        for dep, reason in wanted:
            found = _open_with_label(doc, label(dep.id))
            if found is not None:
                out.append({"dependency": dep.id, "todo": found[0], "repo": found[1],
                            "created": False})
                continue
            new_id = new_id_in(doc, "todo", catalog_path)
            check = dep.validation.command if dep.validation else None
            description = (f"coord dep check found {dep.id} unsatisfied"
                           + (f" ({reason})" if reason else "")
                           + (f"; its check: {check}" if check else "")
                           + f". Made by `coord dep check --create-todos`; the label "
                           f"{label(dep.id)} keeps a later run from making another.")
            item = new_item(TODO_KEYS, id=new_id, task=task_of(dep, reason),
                            description=description, repo=dep.consumer, status="pending",
                            labels=[label(dep.id)])
            append_item(section(doc, "todos", create=True), item)
            out.append({"dependency": dep.id, "todo": new_id, "repo": dep.consumer,
                        "created": True})
        return out

    return apply


def already_open(catalog: Catalog, wanted: list[tuple[Dependency, str]]) -> list[DepTodo] | None:
    """The open todos of ``wanted`` when each has one already (nothing to edit: no audit
    entry for an edit that changes nothing), else None."""
    out: list[DepTodo] = []
    for dep, _ in wanted:
        tag = label(dep.id)
        found = next((t for t in catalog.coordination.todos
                      if tag in t.labels and t.status != TodoStatus.completed), None)
        if found is None:
            return None
        out.append({"dependency": dep.id, "todo": found.id, "repo": found.repo,
                    "created": False})
    return out


def unsatisfied(catalog: Catalog, results: Iterable[CheckResult]
                ) -> list[tuple[Dependency, str]]:
    """The dependencies a run found unsatisfied, with why; and those it could not check
    (no validation command) that the catalog records unsatisfied."""
    out: list[tuple[Dependency, str]] = []
    for r in results:
        dep = catalog.dependency(r.id)
        if dep is None:
            continue
        if r.status == UNSATISFIED:
            out.append((dep, r.reason))
        elif r.status == SKIPPED and dep.status.value == UNSATISFIED:
            out.append((dep, "recorded unsatisfied (no validation command)"))
    return out
