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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, TypeAlias

from coordination.catalog.rules.forge_rules import secret_env_name
from coordination.catalog.selection.selectors import parse as parse_selector
from coordination.errors import NotFoundError, Problem, UsageError

if TYPE_CHECKING:  # the checks read fields; `unknown` (a sweep's start) needs no models
    from coordination.catalog.models import Catalog, Dependency, Issue, Plan, Todo

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


@dataclass(frozen=True)
class Known:
    """What a catalog defines, that its references must name (an id defined twice is
    :func:`unique_names`' problem; here the last one stands)."""

    repos: set[str]
    resources: set[str]
    issues: dict[str, Issue]
    plans: set[str]
    todos: dict[str, Todo]

    @classmethod
    def of(cls, cat: Catalog) -> Known:
        c = cat.coordination
        return cls({r.name for r in cat.repos}, {r.name for r in cat.resources},
                   {x.id: x for x in c.issues}, {x.id for x in c.plans},
                   {x.id: x for x in c.todos})


#: One check of the whole catalog: its problems, each with the ``loc`` of the offending
#: value, in document order.
Check: TypeAlias = "Callable[[Catalog, Known], Iterator[Problem]]"


def check_catalog(cat: Catalog) -> list[Problem]:
    """All cross-reference problems of a catalog that parsed into models: those of each
    check of :data:`CHECKS`, in that order."""
    known = Known.of(cat)
    return [problem for check in CHECKS for problem in check(cat, known)]


def unique_names(cat: Catalog, known: Known) -> Iterator[Problem]:
    """A name or id defined twice: its second place (and any later one)."""
    c = cat.coordination
    sections: list[tuple[str, list[tuple[Loc, str]]]] = [
        ("repo name", [(("repos", i, "name"), r.name) for i, r in enumerate(cat.repos)]),
        ("resource name",
         [(("resources", i, "name"), r.name) for i, r in enumerate(cat.resources)]),
        ("issue id", _ids("issues", c.issues)),
        ("plan id", _ids("plans", c.plans)),
        ("todo id", _ids("todos", c.todos)),
        ("dependency id", _ids("dependencies", c.dependencies)),
        ("milestone id", [(("coordination", "plans", i, "milestones", j, "id"), m.id)
                          for i, p in enumerate(c.plans) for j, m in enumerate(p.milestones)]),
    ]
    for what, items in sections:
        seen: dict[str, Loc] = {}
        for loc, key in items:
            if key in seen:
                first = loc_to_field(seen[key])
                yield Problem(f"duplicate {what} {key!r} (first defined at {first}); rename one",
                              loc=loc)
            else:
                seen[key] = loc


def issue_references(cat: Catalog, known: Known) -> Iterator[Problem]:
    """An issue's repos, and its dependencies and blocking: known issues, not itself,
    and each issue it blocks lists it in its dependencies."""
    for i, iss in enumerate(cat.coordination.issues):
        base: Loc = ("coordination", "issues", i)
        for j, r in enumerate(iss.repos):
            yield from _repo_ref((*base, "repos", j), r, known)
        for field in ("dependencies", "blocking"):
            for j, ref in enumerate(getattr(iss, field)):
                if ref == iss.id:
                    yield Problem(f"issue {iss.id} cannot list itself", loc=(*base, field, j))
                elif ref not in known.issues:
                    yield Problem(_known(ref, known.issues, "issue"), loc=(*base, field, j))
        for j, ref in enumerate(iss.blocking):
            other = known.issues.get(ref)
            if other is not None and ref != iss.id and iss.id not in other.dependencies:
                yield Problem(_not_mirrored(iss.id, ref, "dependencies"),
                              loc=(*base, "blocking", j))


def plan_references(cat: Catalog, known: Known) -> Iterator[Problem]:
    """A plan's repos, its push trigger's selector, and the todos its milestones list."""
    for i, plan in enumerate(cat.coordination.plans):
        base: Loc = ("coordination", "plans", i)
        for j, r in enumerate(plan.repos):
            yield from _repo_ref((*base, "repos", j), r, known)
        push = plan.on.push if plan.on is not None else None
        if push is not None:
            try:
                parse_selector(push.repos)
            except UsageError as exc:
                yield Problem(str(exc), loc=(*base, "on", "push", "repos"))
        for j, ms in enumerate(plan.milestones):
            for k, ref in enumerate(ms.todos):
                if ref not in known.todos:
                    yield Problem(_known(ref, known.todos, "todo"),
                                  loc=(*base, "milestones", j, "todos", k))


def todo_references(cat: Catalog, known: Known) -> Iterator[Problem]:
    """Each todo's own references, then its blocked_by, then its blocking."""
    for i, todo in enumerate(cat.coordination.todos):
        base: Loc = ("coordination", "todos", i)
        yield from _todo_own(todo, base, known)
        for j, ref in enumerate(todo.blocked_by):
            message = _blocker_problem(todo, ref, known)
            if message is not None:
                yield Problem(message, loc=(*base, "blocked_by", j))
        for j, ref in enumerate(todo.blocking):
            message = _blocked_problem(todo, ref, known)
            if message is not None:
                yield Problem(message, loc=(*base, "blocking", j))


def dependency_references(cat: Catalog, known: Known) -> Iterator[Problem]:
    """A dependency's consumer and provider: known repos, and not the same one."""
    for i, dep in enumerate(cat.coordination.dependencies):
        base: Loc = ("coordination", "dependencies", i)
        yield from _repo_ref((*base, "consumer"), dep.consumer, known)
        yield from _repo_ref((*base, "provider"), dep.provider, known)
        if dep.consumer == dep.provider:
            yield Problem(f"a repo cannot depend on itself ({dep.consumer})",
                          loc=(*base, "provider"))


def masked_values_not_literal(cat: Catalog, known: Known) -> Iterator[Problem]:
    """A variable that ``mask_env:`` names (the catalog's, the todo's repo's, the todo's)
    is a secret: its value may not sit in a todo's ``env:``, where the catalog, its audit
    log, the history and the sweep spec in Redis would all keep it in clear."""
    repos = {r.name: r for r in cat.repos}
    for i, todo in enumerate(cat.coordination.todos):
        repo = repos.get(todo.repo) if todo.repo else None
        masked = {*cat.mask_env, *(repo.mask_env if repo is not None else ()), *todo.mask_env}
        for name in todo.env:
            if name in masked:
                yield Problem(
                    f"todo {todo.id}: env: {name} has a value, and {name} is listed in "
                    "mask_env: a secret's value is never written in the catalog (the sweep "
                    "spec, the audit log and the history would keep it in clear); remove it "
                    f"from env: and give {name} through the worker's environment "
                    f"({name}=... coord worker ...)",
                    loc=("coordination", "todos", i, "env", name))


def forge_secret_variables(cat: Catalog, known: Known) -> Iterator[Problem]:
    """A repo's ``forge:`` fields that name a secret's variable (``token_env``,
    ``app_key_env``, ``webhook_secret_env``) name neither one of coord's own variables
    nor a process basic: ``token_env: COORD_SIGNING_KEY`` would send the signing key to
    the forge as a bearer token (:func:`~coordination.catalog.rules.forge_rules.secret_env_name`)."""
    for i, repo in enumerate(cat.repos):
        if repo.forge is None:
            continue
        for f in ("token_env", "app_key_env", "webhook_secret_env"):
            try:
                secret_env_name(getattr(repo.forge, f, None), f)
            except ValueError as exc:
                yield Problem(f"repo {repo.name}: forge: {exc}", loc=("repos", i, "forge", f))


#: The checks :func:`check_catalog` makes, in the order their problems are reported.
CHECKS: tuple[Check, ...] = (unique_names, issue_references, plan_references, todo_references,
                             dependency_references)
CHECKS += (forge_secret_variables, masked_values_not_literal)


def _ids(section: str, items: Sequence[Issue | Plan | Todo | Dependency]) -> list[tuple[Loc, str]]:
    return [(("coordination", section, i, "id"), x.id) for i, x in enumerate(items)]


def _repo_ref(loc: Loc, name: str, known: Known) -> Iterator[Problem]:
    if name not in known.repos:
        yield Problem(_known(name, known.repos, "repo"), loc=loc)


def _not_mirrored(owner: str, ref: str, field: str) -> str:
    """``owner`` lists ``ref`` in its blocking, and ``ref``'s ``field`` lacks ``owner``."""
    return (f"{owner} says it blocks {ref}, but {ref}.{field} does not list {owner}; "
            f"add it there or remove {ref} from blocking")


def _todo_own(todo: Todo, base: Loc, known: Known) -> Iterator[Problem]:
    """A todo's repo (a template's selector instead), resources and plan."""
    if todo.for_each is None:
        yield from _repo_ref((*base, "repo"), todo.repo, known)
    else:
        try:
            parse_selector(todo.for_each)
        except UsageError as exc:
            yield Problem(str(exc), loc=(*base, "for_each"))
    for j, name in enumerate(todo.resources):
        if name not in known.resources:
            yield Problem(_known(name, known.resources, "resource")
                          + " (declare it under the top-level resources:)",
                          loc=(*base, "resources", j))
    if todo.plan is not None and todo.plan not in known.plans:
        yield Problem(_known(todo.plan, known.plans, "plan"), loc=(*base, "plan"))


def _blocker_problem(todo: Todo, ref: str, known: Known) -> str | None:
    """What is wrong with ``ref`` in ``todo``'s blocked_by, if anything."""
    if ref == todo.id:
        return f"todo {todo.id} cannot be blocked by itself"
    if ref.startswith("ISSUE-"):
        return None if ref in known.issues else _known(ref, known.issues, "issue")
    if "[" in ref:  # an instance of a template: TODO-009[api], TODO-009[same]
        return _instance_problem(todo, ref, known)
    return None if ref in known.todos else _known(ref, known.todos, "todo")


def _instance_problem(todo: Todo, ref: str, known: Known) -> str | None:
    """What is wrong with a template's instance ``ref`` in ``todo``'s blocked_by."""
    tid = ref.partition("[")[0]
    if tid not in known.todos:
        return _known(tid, known.todos, "todo")
    if known.todos[tid].for_each is None:
        return (f"{ref} names an instance, but {tid} is not a template (no for_each:); "
                f"write {tid}")
    if ref.endswith("[same]") and todo.for_each is None:
        return (f"{ref}: [same] means the same repo's instance and {todo.id} is not a "
                f"template; name the repo ({tid}[{todo.repo}]) or write {tid}")
    return None


def _blocked_problem(todo: Todo, ref: str, known: Known) -> str | None:
    """What is wrong with ``ref`` in ``todo``'s blocking, if anything."""
    blocked = known.todos.get(ref)
    if ref == todo.id:
        return f"todo {todo.id} cannot block itself"
    if blocked is None:
        return _known(ref, known.todos, "todo")
    if todo.id not in blocked.blocked_by:
        return _not_mirrored(todo.id, ref, "blocked_by")
    return None


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
