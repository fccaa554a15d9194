"""`coord run ... --save-as PLAN`: the run kept as a plan of the catalog, in one
audited edit (a plan, and one todo per selected repo with the command as its ``run:``,
``blocked_by`` its providers' todos when ordered by dependencies)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.audit.log import operation
from coordination.catalog.edits.document import (
    PLAN_KEYS,
    TODO_KEYS,
    append_item,
    ids_in,
    new_id_in,
    new_item,
    section,
)
from coordination.catalog.file.store import CatalogStore
from coordination.errors import UsageError

_PLAN_ID = re.compile(r"^PLAN-\d+$")
#: A todo's task is at most this long (a sweep's title, TITLE_CHARS).
TASK_CHARS = 200


def run_title(repo: str, command: str) -> str:
    """A saved run's todo title: ``REPO: COMMAND`` on one line, the command shortened
    with an ellipsis to fit (the repo is never cut: it is what tells the todos apart)."""
    flat = " ".join(command.split())
    room = TASK_CHARS - len(repo) - 2
    if len(flat) > room:
        flat = flat[:max(room - 1, 0)].rstrip() + "…"
    return f"{repo}: {flat}"


def save_run_plan(store: CatalogStore, plan: str, command: str, repos: Sequence[str],
                  providers: Mapping[str, Sequence[str]], *, selector: str,
                  cache: bool = False, timeout: float | None = None) -> tuple[str, dict[str, str]]:
    """Write the plan; returns its id and repo -> todo id. ``plan``: a new plan's id
    (``PLAN-012``, refused if taken) or its title (a fresh id is given);
    ``providers``: repo -> the selected repos its todo waits for."""

    def edit(doc: CommentedMap) -> tuple[str, dict[str, str]]:
        if _PLAN_ID.match(plan):
            if plan in ids_in(doc, "plans"):
                raise UsageError(f"--save-as {plan}: the catalog has a plan {plan} already",
                                 hint="name a new plan id, or give a title (a new id is chosen)")
            pid, title = plan, f"coord run {command}"[:200]
        else:
            pid, title = new_id_in(doc, "plan", store.path), plan
        first = new_id_in(doc, "todo", store.path)
        width, n = len(first) - len("TODO-"), int(first[len("TODO-"):])
        ids = {r: f"TODO-{n + i:0{width}d}" for i, r in enumerate(repos)}
        append_item(section(doc, "plans", create=True), new_item(
            PLAN_KEYS, id=pid, title=title, status="active", repos=list(repos),
            description=f"Saved by coord run: `{command}` over --repos {selector!r}"))
        todos = section(doc, "todos", create=True)
        blocking: dict[str, list[str]] = {}
        for r in repos:
            for p in providers.get(r, ()):
                blocking.setdefault(ids[p], []).append(ids[r])
        for r in repos:
            append_item(todos, new_item(
                TODO_KEYS, id=ids[r], task=run_title(r, command), repo=r, plan=pid, run=command,
                cache=True if cache else None, status="pending",
                timeout=None if timeout in (None, 3600) else timeout,
                blocked_by=sorted(ids[p] for p in providers.get(r, ())),
                blocking=sorted(blocking.get(ids[r], []))))
        return pid, ids

    with operation("run.save_as"):
        return store.update(edit)
