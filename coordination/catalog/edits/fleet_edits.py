"""`coord init`'s edit, the ``fleet`` part of
:class:`~coordination.catalog.manager.CoordinationManager`: what it found in a fleet of
checkouts taken into the catalog at once (one audit entry), written directly into a
catalog it has just created."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.file import fresh as fresh_catalog
from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import StoreEdits
from coordination.catalog.edits.document import (
    DEP_KEYS,
    ReferenceDict,
    append_item,
    find_repo,
    new_id_in,
    new_item,
    put,
    put_field,
    put_list,
    remove_at,
    remove_repo_item,
    repo_names,
    repos_section,
    section,
)
from coordination.catalog.edits.inputs import choice
from coordination.catalog.models import REPO_NAME_RE, DependencyType, git_remote, next_id
from coordination.catalog.edits.repo_edits import REPO_KEYS, repo_users
from coordination.errors import UsageError

#: What `coord init --check --apply` may update on an inferred dependency.
_FLEET_UPDATABLE = frozenset({"type", "indirect", "version_constraint", "source"})


class FleetEdit(TypedDict, total=False):
    """What :meth:`FleetEdits.apply` takes (``coord init``, ``init --check
    --apply``): repos and dependencies to add (as ``coordination.fleet.drift`` builds them),
    inferred dependencies to remove by id, inferred dependencies' fields to update by id
    (``type``, ``indirect``, ``version_constraint``, ``source``; None removes one), the
    source of those whose line alone moved (``move_dependencies``: no drift, said apart),
    default branches, clone URLs and tags to set, repos to prune."""

    repos: Sequence[Mapping[str, object]]
    dependencies: Sequence[Mapping[str, object]]
    remove_dependencies: Sequence[str]
    update_dependencies: Mapping[str, Mapping[str, object]]
    move_dependencies: Mapping[str, Mapping[str, object]]
    default_branches: Mapping[str, str]
    urls: Mapping[str, str]
    tags: Mapping[str, Sequence[str]]
    prune: Sequence[str]


class KeptReference(ReferenceDict):
    """A repo to prune that something else still names: which repo, and what names it."""

    repo: str


class FleetApplied(TypedDict):
    """What one :meth:`FleetEdits.apply` did: the ids the new dependencies
    got, and the repos pruned or kept because something still names them."""

    repos_added: list[str]
    dependencies_added: list[str]
    dependencies_removed: list[str]
    dependencies_updated: list[str]
    #: Those whose source line alone was refreshed (it moved): not an update.
    dependencies_moved: list[str]
    branches_set: list[str]
    urls_set: list[str]
    tags_set: list[str]
    repos_pruned: list[str]
    pruned_dependencies: list[str]
    kept: list[KeptReference]


class FleetEdits(StoreEdits):
    """A fleet's repos and dependencies at once, `coord init`'s edit (``manager.fleet``)."""

    @audited("apply_fleet")
    def apply(self, changes: FleetEdit) -> FleetApplied:
        """Take what ``coord init`` found in one edit (one audit entry): add repos and
        dependencies, remove the inferred dependencies whose manifests dropped them,
        set moved default branches, and prune repos whose checkout is gone, with their
        dependencies. A pruned repo that a todo, issue or plan still names is kept and
        listed in ``kept`` (delete or move those first, or `coord repo remove --force`)."""
        fleet = _Fleet.checked(changes, self.store.path)
        return self.store.update(fleet.edit, direct=fleet.direct)


@dataclass
class _Fleet:
    """The changes of one :meth:`FleetEdits.apply`, checked: the edit of the
    document, or of the text of a catalog `coord init` has just created."""

    changes: FleetEdit
    catalog: str | os.PathLike[str]
    new_repos: list[Mapping[str, object]]
    new_deps: list[Mapping[str, object]]
    updates: dict[str, Mapping[str, object]]

    @classmethod
    def checked(cls, changes: FleetEdit, catalog: str | os.PathLike[str]) -> _Fleet:
        """The changes, refused (exit 2) where a repo name, a dependency or an update of
        an inferred one is not one the catalog can hold."""
        new_repos = list(changes.get("repos") or ())
        for r in new_repos:
            if not re.match(REPO_NAME_RE, str(r.get("name", ""))):
                raise UsageError(f"bad repo name {r.get('name')!r}")
        new_deps = list(changes.get("dependencies") or ())
        for d in new_deps:
            choice(str(d.get("type", "runtime")), DependencyType, "dependency type")
            if d.get("consumer") == d.get("provider"):
                raise UsageError(f"a repo cannot depend on itself ({d.get('consumer')})")
        updates = dict(changes.get("update_dependencies") or {})
        for fields in [*updates.values(), *({"source": source} for source in
                                            (changes.get("move_dependencies") or {}).values())]:
            if set(fields) - _FLEET_UPDATABLE:
                raise UsageError(f"cannot update {sorted(set(fields) - _FLEET_UPDATABLE)} "
                                 "of an inferred dependency")
            if fields.get("type") is not None:
                choice(str(fields["type"]), DependencyType, "dependency type")
        return cls(changes, catalog, new_repos, new_deps, updates)

    def edit(self, doc: CommentedMap) -> FleetApplied:
        """The whole edit, on the round-trip document."""
        done = _nothing_applied()
        names = set(repo_names(doc))
        # Before anything is removed: an id removed in this edit is not handed out again.
        first_id = new_id_in(doc, "dependency", self.catalog)
        self._add_repos(doc, names, done)
        self._set_repo_fields(doc, done)
        pruned = self._prunable(doc, done)
        self._edit_dependencies(doc, pruned, done)
        for name in sorted(pruned):
            remove_repo_item(doc, name)
            done["repos_pruned"].append(name)
        self._add_dependencies(doc, _dependency_ids(first_id, len(self.new_deps)), done)
        # Found from the end of the section down: listed in file order.
        done["dependencies_removed"].reverse()
        done["dependencies_updated"].reverse()
        done["dependencies_moved"].reverse()
        done["pruned_dependencies"].reverse()
        return done

    def direct(self, data: bytes) -> tuple[bytes, FleetApplied] | None:
        """The edit of a catalog `coord init` has just created (comment lines
        and ``version: 1``), with only repos and dependencies to add: written as
        ``edit`` would write it (see ``fresh``), without the round trip."""
        changes = self.changes
        if (changes.get("remove_dependencies") or changes.get("default_branches")
                or changes.get("urls") or changes.get("prune") or self.updates
                or changes.get("move_dependencies") or changes.get("tags")):
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not fresh_catalog.is_fresh(text):
            return None
        done = _nothing_applied()
        done["repos_added"].extend(_new_repo_names(self.new_repos, set()))
        ids: list[str] = []
        if self.new_deps:
            first_id = new_id_in(CommentedMap(), "dependency", self.catalog)  # none in it
            ids = _dependency_ids(first_id, len(self.new_deps))
        done["dependencies_added"].extend(ids)
        try:
            new = fresh_catalog.fleet_text(text, self.new_repos, REPO_KEYS,
                                           list(zip(ids, self.new_deps)), DEP_KEYS)
        except fresh_catalog.Unsupported:
            return None
        return new.encode("utf-8"), done

    def _add_repos(self, doc: CommentedMap, names: set[str], done: FleetApplied) -> None:
        if not self.new_repos:
            return
        added = _new_repo_names(self.new_repos, names)
        repos = repos_section(doc)
        for name, r in zip(added, self.new_repos):
            append_item(repos, new_item(REPO_KEYS, **r))
            done["repos_added"].append(name)

    def _set_repo_fields(self, doc: CommentedMap, done: FleetApplied) -> None:
        """Moved default branches and clone URLs."""
        for name, branch in (self.changes.get("default_branches") or {}).items():
            put(find_repo(doc, name)[1], "default_branch", branch, REPO_KEYS)
            done["branches_set"].append(name)
        for name, url in (self.changes.get("urls") or {}).items():
            put(find_repo(doc, name)[1], "url", git_remote(url), REPO_KEYS)
            done["urls_set"].append(name)
        for name, tags in (self.changes.get("tags") or {}).items():
            put_list(find_repo(doc, name)[1], "tags", list(tags), REPO_KEYS)
            done["tags_set"].append(name)

    def _prunable(self, doc: CommentedMap, done: FleetApplied) -> set[str]:
        """The repos to prune that nothing but dependencies names; the others are kept,
        listed in ``done["kept"]`` with what names them."""
        pruned: set[str] = set()
        for name in self.changes.get("prune") or ():
            find_repo(doc, name)
            others = [r for r in repo_users(doc, name)
                      if r.field not in ("consumer", "provider")]
            if others:
                done["kept"].extend({**r.to_dict(), "repo": name} for r in others)
                continue
            pruned.add(name)
        return pruned

    def _edit_dependencies(self, doc: CommentedMap, pruned: set[str],
                           done: FleetApplied) -> None:
        """Remove the dependencies asked for and those of the ``pruned`` repos, update
        the inferred ones asked for: from the end of the section down, each found once
        by its index."""
        gone = set(self.changes.get("remove_dependencies") or ())
        moves = self.changes.get("move_dependencies") or {}
        deps = section(doc, "dependencies")
        for i in range(len(deps) - 1, -1, -1):
            d = deps[i]
            if not isinstance(d, dict):
                continue
            did = str(d.get("id"))
            kept = d.get("consumer") not in pruned and d.get("provider") not in pruned
            if did in gone:
                remove_at(doc, "dependencies", i)
                done["dependencies_removed"].append(did)
            elif did in self.updates and isinstance(d, CommentedMap) and kept:
                _update_inferred(d, self.updates[did])
                done["dependencies_updated"].append(did)
            elif did in moves and isinstance(d, CommentedMap) and kept:
                _update_inferred(d, {"source": moves[did]})
                done["dependencies_moved"].append(did)
            elif d.get("consumer") in pruned or d.get("provider") in pruned:
                remove_at(doc, "dependencies", i)
                done["pruned_dependencies"].append(did)

    def _add_dependencies(self, doc: CommentedMap, ids: list[str], done: FleetApplied) -> None:
        if not self.new_deps:
            return
        items = section(doc, "dependencies", create=True)
        for new_id, d in zip(ids, self.new_deps):
            source = d.get("source")
            fields = {k: v for k, v in d.items() if k != "source"}
            item = new_item(DEP_KEYS, id=new_id, **fields)
            if isinstance(source, Mapping):
                put_field(item, "source", dict(source), DEP_KEYS)
            append_item(items, item)
            done["dependencies_added"].append(new_id)


def _nothing_applied() -> FleetApplied:
    return {"repos_added": [], "dependencies_added": [], "dependencies_removed": [],
            "dependencies_updated": [], "dependencies_moved": [], "branches_set": [],
            "urls_set": [], "tags_set": [], "repos_pruned": [], "pruned_dependencies": [],
            "kept": []}


def _new_repo_names(new_repos: Sequence[Mapping[str, object]], names: set[str]) -> list[str]:
    """The names of the repos to add, each new to ``names`` (the catalog's, which it
    joins), else refused."""
    added = []
    for r in new_repos:
        name = str(r["name"])
        if name in names:
            raise UsageError(f"repo {name!r} exists already",
                             hint="run `coord init --check` to see what changed")
        names.add(name)
        added.append(name)
    return added


def _dependency_ids(first: str, n: int) -> list[str]:
    """``n`` new dependency ids from ``first`` on, each the next one (the same width)."""
    ids = [first] if n else []
    while len(ids) < n:
        ids.append(next_id("dependency", [ids[-1]]))
    return ids


def _update_inferred(dep: CommentedMap, fields: Mapping[str, object]) -> None:
    """Set (or, for None, remove) fields of an inferred dependency. A new source keeps
    the manifest's ``type`` of the old one (the mark of a type set by hand) unless it
    says one itself."""
    for field, value in fields.items():
        if field == "source":
            new = dict(value) if isinstance(value, Mapping) else None
            old = dep.get("source")
            if new is not None and "type" not in new and isinstance(old, Mapping) \
                    and old.get("type"):
                new["type"] = old["type"]
            put_field(dep, field, new, DEP_KEYS)
        else:
            put(dep, field, value, DEP_KEYS)
