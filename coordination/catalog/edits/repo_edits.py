"""Repos as catalog edits, the ``repos`` part of
:class:`~coordination.catalog.manager.CoordinationManager` (:mod:`.edit_base` says the
rules every edit of the catalog's structure keeps); :func:`repo_users`, what names a repo."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypedDict, Unpack

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import StoreEdits, found, refusable
from coordination.catalog.edits.document import (
    Reference,
    ReferenceDict,
    StillReferenced,
    append_item,
    find_item,
    find_repo,
    new_item,
    put_changes,
    put_field,
    remove_at,
    remove_from,
    remove_repo_item,
    repo_names,
    repos_section,
    section,
)
from coordination.catalog.edits.inputs import Spec, check_editable, require_changes, uniq
from coordination.catalog.models import MAX_CONCURRENCY, REPO_NAME_RE, Repo
from coordination.errors import UsageError
from coordination.jsonable import JSONObject

REPO_KEYS = ("name", "path", "description", "role", "tags", "concurrency", "breaker",
             "default_branch", "remote", "url", "forge", "land_command", "revert_command",
             "land_hooks", "cache", "pace", "prepare")
REPO_EDITABLE = {"path", "description", "role", "tags", "concurrency", "breaker",
                 "default_branch", "remote", "url", "land_command", "revert_command", "land_hooks",
                 "cache", "pace", "prepare", "forge"}
#: Fields the loader validates, set as given (a mapping as a flow mapping); a value that
#: is not valid is refused with the loader's own message and nothing is written.
REPO_FIELDS = ("breaker", "default_branch", "remote", "url", "land_command", "revert_command",
               "land_hooks", "cache", "pace", "prepare", "forge")


class RepoFields(TypedDict, total=False):
    """The fields of ``REPO_FIELDS``: what :meth:`Repos.add` takes besides
    its own arguments, and :meth:`Repos.update` too."""

    breaker: Spec | None
    default_branch: str | None
    remote: str | None
    url: str | None
    land_command: str | None
    revert_command: str | None
    land_hooks: bool | None  # False or None: the default (off), the key removed
    cache: bool | Spec | None
    pace: Spec | None
    prepare: str | None
    # Entries of `forge:` (kind, project, api, token_env, webhook_secret_env): a value sets
    # one, None removes it; None for the whole mapping removes `forge:`.
    forge: Spec | None


class RepoChanges(RepoFields, total=False):
    """What :meth:`Repos.update` takes (``REPO_EDITABLE``)."""

    path: str | None
    description: str | None
    role: str | None
    tags: Iterable[str] | None
    concurrency: int | None


class RepoDeleted(TypedDict):
    """``coord repo remove --json``: with ``--force``, what went with the repo."""

    deleted: str
    repo: JSONObject
    deleted_todos: list[str]
    deleted_dependencies: list[str]
    dropped: list[ReferenceDict]


class Repos(StoreEdits):
    """Repos added, changed and removed (``manager.repos``)."""

    @audited("add_repo")
    def add(self, name: str, *, path: str | None = None, description: str = "",
                 role: str = "", tags: Iterable[str] = (), concurrency: int | None = None,
                 **fields: Unpack[RepoFields]) -> Repo:
        """Append a repo (``path``: its checkout, relative to the catalog; default its
        name; ``fields``: those of ``REPO_FIELDS``, checked by the loader)."""
        check_editable(fields, set(REPO_FIELDS), "a new repo")
        if not re.match(REPO_NAME_RE, name):
            raise UsageError(f"bad repo name {name!r}",
                             hint="lower-case letters, digits, '.', '_' and '-', starting "
                             "with a letter or digit (libcore, api-v2)")
        _concurrency(concurrency)
        labels = uniq(tags)

        def edit(doc: CommentedMap) -> None:
            if name in repo_names(doc):
                raise UsageError(f"repo {name!r} exists already",
                                 hint=f"change it with `coord repo update {name}`")
            repos = repos_section(doc)
            item = new_item(REPO_KEYS, name=name, path=path, description=description,
                            role=role, tags=labels, concurrency=concurrency)
            for key, value in fields.items():
                if key == "forge" and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if v is not None}
                put_field(item, key, None if value is False and key == "land_hooks"
                          else value, REPO_KEYS)
            append_item(repos, item)

        self.store.update(edit)
        return self._repo_named(name)

    @audited("update_repo")
    def update(self, name: str, **changes: Unpack[RepoChanges]) -> Repo:
        """Change some fields of a repo (not its name: everything names it by that);
        None or an empty value removes an optional field."""
        check_editable(changes, REPO_EDITABLE, "a repo")
        if "concurrency" in changes and changes["concurrency"] is None:
            changes.pop("concurrency")
        _concurrency(changes.get("concurrency"))
        lists = {k: uniq(changes.pop(k) or ())
                 for k in ("tags",) if k in changes}
        fields = {k: changes.pop(k) for k in REPO_FIELDS if k in changes}  # type: ignore[misc]
        if fields.get("land_hooks") is False:
            fields["land_hooks"] = None  # the default: written as no key, like a new repo
        require_changes(changes, lists, fields)

        def edit(doc: CommentedMap) -> None:
            item = find_repo(doc, name)[1]
            put_changes(item, REPO_KEYS, changes, fields, lists, entries=("forge",))

        self.store.update(edit)
        return self._repo_named(name)

    @audited("remove_repo")
    def remove(self, name: str, *, force: bool = False) -> RepoDeleted:
        """Remove a repo. While todos run in it, dependencies name it, or issues and plans
        list it, refused with :class:`StillReferenced` naming each; with ``force`` its
        todos and dependencies are deleted too (references to those todos dropped) and
        it is taken out of the issues' and plans' repos, in the same edit."""
        before = self._repo_named(name)

        def edit(doc: CommentedMap) -> tuple[list[str], list[str], list[Reference]]:
            find_repo(doc, name)
            refs = repo_users(doc, name)
            if refs and not force:
                raise StillReferenced(
                    name, refs, reason=f"{len(refs)} item{'s' if len(refs) != 1 else ''} "
                    "name it",
                    hint=f"move or delete them first, or pass --force to delete {name} with "
                    "its todos and dependencies and take it out of the issues' and plans' "
                    "repos")
            todos = [r.referrer for r in refs if r.field == "repo"]
            deps = [r.referrer for r in refs if r.field in ("consumer", "provider")]
            for r in refs:
                if r.field == "repos":
                    parent = find_item(doc, "issues" if r.kind == "issue" else "plans",
                                       r.referrer, r.kind)
                    remove_from(parent, "repos", name)
            dropped = _drop_todo_references(doc, set(todos))
            # Each found once by its index (refs carry it), removed from the end down.
            for sec, field in (("dependencies", ("consumer", "provider")), ("todos", ("repo",))):
                at = sorted({int(r.loc[2]) for r in refs if r.field in field}, reverse=True)
                for i in at:
                    remove_at(doc, sec, i)
            remove_repo_item(doc, name)
            return todos, list(dict.fromkeys(deps)), [
                r for r in refs if r.field == "repos"] + dropped

        todos, deps, dropped = refusable(self.store, edit)
        return {"deleted": name, "repo": before.model_dump(mode="json"),
                "deleted_todos": todos, "deleted_dependencies": deps,
                "dropped": [r.to_dict() for r in dropped]}

    def _repo_named(self, name: str) -> Repo:
        cat = self.store.load()
        return found(cat.repo(name), name, lambda: (r.name for r in cat.repos), "repo")


def _concurrency(value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 1 <= value <= MAX_CONCURRENCY):
        raise UsageError(f"bad --concurrency {value!r}; a whole number from 1 to "
                         f"{MAX_CONCURRENCY}")


def repo_users(doc: CommentedMap, name: str) -> list[Reference]:
    """Everything that names repo ``name``: todos in it, dependencies on or of it,
    issues and plans listing it."""
    out: list[Reference] = []
    for i, t in enumerate(section(doc, "todos")):
        if isinstance(t, dict) and t.get("repo") == name:
            tid = str(t.get("id"))
            out.append(Reference(tid, "todo", "repo", name, ("coordination", "todos", i, "repo"),
                                 text=f"todo {tid} runs in {name}"))
    for i, d in enumerate(section(doc, "dependencies")):
        if not isinstance(d, dict):
            continue
        for end in ("consumer", "provider"):
            if d.get(end) == name:
                did = str(d.get("id"))
                out.append(Reference(did, "dependency", end, name,
                                     ("coordination", "dependencies", i, end),
                                     text=f"dependency {did} has {name} as its {end}"))
    for sec, kind in (("issues", "issue"), ("plans", "plan")):
        for i, x in enumerate(section(doc, sec)):
            if isinstance(x, dict):
                for j, r in enumerate(x.get("repos") or ()):
                    if r == name:
                        xid = str(x.get("id"))
                        out.append(Reference(xid, kind, "repos", name,
                                             ("coordination", sec, i, "repos", j),
                                             text=f"{kind} {xid} lists {name} in its repos"))
    return out


def _drop_todo_references(doc: CommentedMap, gone: set[str]) -> list[Reference]:
    """Take the todos ``gone`` out of every other todo's ``blocked_by``/``blocking`` and
    every milestone's ``todos``, in one pass; returns what was dropped (references from
    todos that go too are not listed)."""
    out: list[Reference] = []
    if not gone:
        return out
    for i, t in enumerate(section(doc, "todos")):
        if not isinstance(t, CommentedMap) or t.get("id") in gone:
            continue
        for field in ("blocked_by", "blocking"):
            for j, v in _take_out(t, field, gone):
                # (a blocking entry always mirrors the gone todo's own blocked_by)
                out.append(Reference(str(t.get("id")), "todo", field, v,
                                     ("coordination", "todos", i, field, j),
                                     mirror=field == "blocking"))
    for i, plan in enumerate(section(doc, "plans")):
        if not isinstance(plan, CommentedMap):
            continue
        for j, ms in enumerate(plan.get("milestones") or ()):
            if isinstance(ms, CommentedMap):
                for k, v in _take_out(ms, "todos", gone):
                    out.append(Reference(
                        str(ms.get("id")), "milestone", "todos", v,
                        ("coordination", "plans", i, "milestones", j, "todos", k),
                        str(plan.get("id"))))
    return out


def _take_out(item: CommentedMap, field: str, gone: set[str]) -> list[tuple[int, str]]:
    """Remove the ids of ``gone`` from the list ``item[field]``; (index, id) of each."""
    hits = [(j, str(v)) for j, v in enumerate(item.get(field) or ()) if v in gone]
    for v in dict.fromkeys(v for _, v in hits):
        remove_from(item, field, v)
    return hits
