"""Whole-catalog checks: what no single model can check alone.

Every check returns :class:`~coordination.errors.Problem` objects with a
``loc`` (path into the document) so the loader can name the line; messages
say what is wrong and how to fix it.

Rules on blocking relations: ``blocked_by`` is the primary side. A todo's
``blocking: [B]`` is the same relation seen from the other side, so ``B`` must
list the todo in its ``blocked_by`` (the CLI writes both sides). The same
holds for issues' ``blocking`` and ``dependencies``.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

from coordination.catalog.models import Catalog
from coordination.catalog.selectors import parse as parse_selector
from coordination.errors import NotFoundError, Problem, UsageError

Loc = tuple[str | int, ...]


def unknown(name: str, known: Iterable[str], what: str) -> NotFoundError:
    """A NotFoundError whose hint names the closest match, or where to look."""
    known = sorted(known)
    close = get_close_matches(name.upper() if what != "repo" else name, known, n=3)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        noun = {"dependency": "dep"}.get(what, what)
        listing = f"coord {noun} list"
        hint = f"`{listing}` shows what exists" if known else f"the catalog has no {what}s yet"
    return NotFoundError(f"unknown {what} {name!r}", hint=hint)


def _known(name: str, known: Iterable[str], what: str) -> str:
    known = sorted(known)
    close = get_close_matches(name, known, n=1)
    if close:
        return f"unknown {what} {name!r} (did you mean {close[0]!r}?)"
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"unknown {what} {name!r} (known: {shown or 'none'})"


def check_catalog(cat: Catalog) -> list[Problem]:
    """All cross-reference problems of a catalog that parsed into models."""
    out: list[Problem] = []
    c = cat.coordination

    def bad(loc: Loc, message: str) -> None:
        out.append(Problem(message, loc=loc))

    # -- unique names and ids -------------------------------------------------
    def unique(items: list[tuple[Loc, str]], what: str) -> set[str]:
        seen: dict[str, Loc] = {}
        for loc, key in items:
            if key in seen:
                first = _loc_text(seen[key])
                bad(loc, f"duplicate {what} {key!r} (first defined at {first}); rename one")
            else:
                seen[key] = loc
        return set(seen)

    repos = unique([(("repos", i, "name"), r.name) for i, r in enumerate(cat.repos)], "repo name")
    resources = unique(
        [(("resources", i, "name"), r.name) for i, r in enumerate(cat.resources)], "resource name"
    )
    issues = unique(
        [(("coordination", "issues", i, "id"), x.id) for i, x in enumerate(c.issues)], "issue id"
    )
    plans = unique(
        [(("coordination", "plans", i, "id"), x.id) for i, x in enumerate(c.plans)], "plan id"
    )
    todos = unique(
        [(("coordination", "todos", i, "id"), x.id) for i, x in enumerate(c.todos)], "todo id"
    )
    unique(
        [(("coordination", "dependencies", i, "id"), x.id) for i, x in enumerate(c.dependencies)],
        "dependency id",
    )
    unique(
        [
            (("coordination", "plans", i, "milestones", j, "id"), m.id)
            for i, p in enumerate(c.plans)
            for j, m in enumerate(p.milestones)
        ],
        "milestone id",
    )

    def repo_ref(loc: Loc, name: str) -> None:
        if name not in repos:
            bad(loc, _known(name, repos, "repo"))

    # -- issues ---------------------------------------------------------------
    issue_by_id = {x.id: x for x in c.issues}
    for i, iss in enumerate(c.issues):
        base: Loc = ("coordination", "issues", i)
        for j, r in enumerate(iss.repos):
            repo_ref((*base, "repos", j), r)
        for field in ("dependencies", "blocking"):
            for j, ref in enumerate(getattr(iss, field)):
                if ref == iss.id:
                    bad((*base, field, j), f"issue {iss.id} cannot list itself")
                elif ref not in issues:
                    bad((*base, field, j), _known(ref, issues, "issue"))
        for j, ref in enumerate(iss.blocking):
            other = issue_by_id.get(ref)
            if other is not None and ref != iss.id and iss.id not in other.dependencies:
                bad(
                    (*base, "blocking", j),
                    f"{iss.id} says it blocks {ref}, but {ref}.dependencies does not list "
                    f"{iss.id}; add it there or remove {ref} from blocking",
                )

    # -- plans ----------------------------------------------------------------
    for i, plan in enumerate(c.plans):
        base = ("coordination", "plans", i)
        for j, r in enumerate(plan.repos):
            repo_ref((*base, "repos", j), r)
        for j, ms in enumerate(plan.milestones):
            for k, ref in enumerate(ms.todos):
                if ref not in todos:
                    bad((*base, "milestones", j, "todos", k), _known(ref, todos, "todo"))

    # -- todos ----------------------------------------------------------------
    todo_by_id = {t.id: t for t in c.todos}
    for i, todo in enumerate(c.todos):
        base = ("coordination", "todos", i)
        if todo.for_each is None:
            repo_ref((*base, "repo"), todo.repo)
        else:
            try:
                parse_selector(todo.for_each)
            except UsageError as exc:
                bad((*base, "for_each"), str(exc))
        for j, name in enumerate(todo.resources):
            if name not in resources:
                bad((*base, "resources", j), _known(name, resources, "resource")
                    + " (declare it under the top-level resources:)")
        if todo.plan is not None and todo.plan not in plans:
            bad((*base, "plan"), _known(todo.plan, plans, "plan"))
        for j, ref in enumerate(todo.blocked_by):
            if ref == todo.id:
                bad((*base, "blocked_by", j), f"todo {todo.id} cannot be blocked by itself")
            elif ref.startswith("ISSUE-"):
                if ref not in issues:
                    bad((*base, "blocked_by", j), _known(ref, issues, "issue"))
            elif "[" in ref:  # an instance of a template: TODO-009[api], TODO-009[same]
                tid = ref.partition("[")[0]
                if tid not in todos:
                    bad((*base, "blocked_by", j), _known(tid, todos, "todo"))
                elif todo_by_id[tid].for_each is None:
                    bad((*base, "blocked_by", j),
                        f"{ref} names an instance, but {tid} is not a template (no for_each:); "
                        f"write {tid}")
                elif ref.endswith("[same]") and todo.for_each is None:
                    bad((*base, "blocked_by", j),
                        f"{ref}: [same] means the same repo's instance and {todo.id} is not a "
                        f"template; name the repo ({tid}[{todo.repo}]) or write {tid}")
            elif ref not in todos:
                bad((*base, "blocked_by", j), _known(ref, todos, "todo"))
        for j, ref in enumerate(todo.blocking):
            blocked = todo_by_id.get(ref)
            if ref == todo.id:
                bad((*base, "blocking", j), f"todo {todo.id} cannot block itself")
            elif blocked is None:
                bad((*base, "blocking", j), _known(ref, todos, "todo"))
            elif todo.id not in blocked.blocked_by:
                bad(
                    (*base, "blocking", j),
                    f"{todo.id} says it blocks {ref}, but {ref}.blocked_by does not list "
                    f"{todo.id}; add it there or remove {ref} from blocking",
                )

    # -- dependencies ---------------------------------------------------------
    for i, dep in enumerate(c.dependencies):
        base = ("coordination", "dependencies", i)
        repo_ref((*base, "consumer"), dep.consumer)
        repo_ref((*base, "provider"), dep.provider)
        if dep.consumer == dep.provider:
            bad((*base, "provider"), f"a repo cannot depend on itself ({dep.consumer})")
    return out


def _loc_text(loc: Loc) -> str:
    return loc_to_field(loc)


def loc_to_field(loc: Loc) -> str:
    """``("coordination", "todos", 3, "repo")`` -> ``todos[3].repo``."""
    parts = list(loc)
    if parts and parts[0] == "coordination" and len(parts) > 1:
        parts = parts[1:]
    text = ""
    for p in parts:
        if isinstance(p, int):
            text += f"[{p}]"
        else:
            text += ("." if text else "") + str(p)
    return text
