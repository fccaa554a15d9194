"""Dependencies between repos as catalog edits, the ``dependencies`` part of
:class:`~coordination.catalog.manager.CoordinationManager` (:mod:`.edit_base` says the
rules every edit of the catalog's structure keeps)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TypedDict, Unpack

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.audit.log import audited
from coordination.catalog.edits.edit_base import CatalogEdits, found, refusable
from coordination.catalog.edits.document import (
    DEP_KEYS,
    append_item,
    find_item,
    new_id_in,
    new_item,
    put,
    put_entries,
    put_mapping_entries,
    remove_item,
    section,
)
from coordination.catalog.edits.inputs import check_editable, choice, require_changes, require_repos
from coordination.catalog.runs.depcheck import CheckResult
from coordination.catalog.runs.dependency_checks import check_dependencies
from coordination.catalog.models import Dependency, DependencyStatus, DependencyType
from coordination.errors import UsageError
from coordination.jsonable import JSONObject

VALIDATION_KEYS = ("command", "expected_pattern", "timeout")
DEP_EDITABLE = {"consumer", "provider", "type", "version_constraint", "status", "notes",
                "command", "expected_pattern", "timeout"}
MAX_CHECK_TIMEOUT = 3600  # as the Validation model allows


class DependencyChanges(TypedDict, total=False):
    """What :meth:`Dependencies.update` takes (``DEP_EDITABLE``); the
    last three are its validation's (``command`` None removes the validation)."""

    consumer: str | None
    provider: str | None
    type: str | None
    version_constraint: str | None
    status: str | None
    notes: str | None
    command: str | None
    expected_pattern: str | None
    timeout: float | None


class DependencyDeleted(TypedDict):
    """``coord dep remove --json``."""

    deleted: str
    dependency: JSONObject


class Dependencies(CatalogEdits):
    """Dependencies added, changed, removed and checked (``manager.dependencies``)."""

    @audited("add_dependency")
    def add(
        self, consumer: str, provider: str, *, type: str = "runtime",
        version_constraint: str | None = None, status: str = "unknown", notes: str = "",
        command: str | None = None, expected_pattern: str | None = None,
        timeout: float | None = None,
    ) -> Dependency:
        """Append a dependency of ``consumer`` on ``provider``; ``command`` (with
        ``expected_pattern``, ``timeout``) is its validation for `coord dep check`."""
        choice(type, DependencyType, "dependency type")
        choice(status, DependencyStatus, "dependency status")
        if consumer == provider:
            raise UsageError(f"a repo cannot depend on itself ({consumer})")
        _check_validation(command, expected_pattern, timeout, given_command=True)
        check = _validation(command, expected_pattern, timeout)

        def edit(doc: CommentedMap) -> str:
            require_repos(doc, [consumer, provider])
            new_id = new_id_in(doc, "dependency", self.store.path)
            append_item(section(doc, "dependencies", create=True), new_item(
                DEP_KEYS, id=new_id, consumer=consumer, provider=provider, type=type,
                version_constraint=version_constraint, status=status, notes=notes,
                validation=check))
            return new_id

        return self._dependency(self.store.update(edit))

    @audited("update_dependency")
    def update(self, id_: str, **changes: Unpack[DependencyChanges]) -> Dependency:
        """Change some fields of a dependency; ``command``, ``expected_pattern`` and
        ``timeout`` are its validation's (``command`` None removes the validation)."""
        check_editable(changes, DEP_EDITABLE, "a dependency")
        for key in ("consumer", "provider", "type", "status"):
            if key in changes and not changes[key]:
                raise UsageError(f"a dependency needs its {key}; give a new one")
        choice(changes.get("type"), DependencyType, "dependency type")
        choice(changes.get("status"), DependencyStatus, "dependency status")
        check: dict[str, str | float | None] = {}
        if "command" in changes:
            check["command"] = changes.pop("command")
        if "expected_pattern" in changes:
            check["expected_pattern"] = changes.pop("expected_pattern")
        if "timeout" in changes:
            check["timeout"] = changes.pop("timeout")
        require_changes(changes, check)
        command, pattern, seconds = (check.get(k) for k in VALIDATION_KEYS)
        _check_validation(None if command is None else str(command),
                          None if pattern is None else str(pattern),
                          None if seconds is None else float(seconds),
                          given_command="command" in check)

        def edit(doc: CommentedMap) -> None:
            item = find_item(doc, "dependencies", id_, "dependency")
            ends = {k: changes.get(k, item.get(k)) for k in ("consumer", "provider")}
            if ends["consumer"] == ends["provider"]:
                raise UsageError(f"a repo cannot depend on itself ({ends['consumer']})")
            require_repos(doc, [str(v) for k, v in changes.items() if k in ends and v])
            if changes.get("type") and isinstance(item.get("source"), dict):
                _type_by_hand(item, str(changes["type"]))
            for key, value in changes.items():
                put(item, key, value, DEP_KEYS)
            if "command" in check and not check["command"]:
                put(item, "validation", None, DEP_KEYS)
            elif check:
                if not isinstance(item.get("validation"), dict) and not check.get("command"):
                    raise UsageError(f"{id_} has no validation command",
                                     hint="give one with --check COMMAND")
                put_entries(item, "validation", check, DEP_KEYS)

        self.store.update(edit)
        return self._dependency(id_)

    @audited("remove_dependency")
    def remove(self, id_: str) -> DependencyDeleted:
        """Remove a dependency (nothing else in the catalog names one)."""
        before = self._dependency(id_)

        def edit(doc: CommentedMap) -> None:
            remove_item(doc, "dependencies", id_, "dependency")

        self.store.update(edit)
        return {"deleted": id_, "dependency": before.model_dump(mode="json")}

    @audited("check_dependencies")
    def check(self, *, consumer: str | None = None,
              only: Collection[str] | None = None) -> list[CheckResult]:
        """`coord dep check`: run the validation commands, record the outcomes in one
        edit (:func:`~coordination.catalog.runs.dependency_checks.check_dependencies`)."""
        return check_dependencies(self.store, self.reads, consumer=consumer, only=only)

    def _dependency(self, id_: str) -> Dependency:
        cat = self.store.load()
        return found(cat.dependency(id_), id_,
                     lambda: (d.id for d in cat.coordination.dependencies), "dependency")


def _type_by_hand(item: CommentedMap, new: str) -> None:
    """A type given to a dependency `coord init` inferred: the type its manifest gives
    is kept in its ``source`` (``type``), which marks the dependency's own as the
    user's (`init --check --apply` keeps it). Given the manifest's type back, the mark
    goes: the type follows the manifest again."""
    source = item["source"]
    said = source.get("type") or item.get("type") or DependencyType.runtime.value
    put_mapping_entries(item, "source", {"type": None if new == said else str(said)},
                        DEP_KEYS)


def _check_validation(command: str | None, pattern: str | None, timeout: float | None,
                      *, given_command: bool) -> None:
    if given_command and command is not None and not command.strip():
        raise UsageError("an empty validation command", hint="leave --check out, or give "
                         "the command that prints the provider's version")
    if not command and given_command and (pattern or timeout is not None):
        raise UsageError("--expect and --check-timeout need a validation command (--check)")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"bad --expect {pattern!r}: not a valid regular expression: "
                             f"{exc}") from None
    if timeout is not None and (isinstance(timeout, bool) or not 0 < timeout <= MAX_CHECK_TIMEOUT):
        raise UsageError(f"bad --check-timeout {timeout!r}; seconds, more than 0 and at most "
                         f"{MAX_CHECK_TIMEOUT}")


def _validation(command: str | None, pattern: str | None, timeout: float | None
                ) -> CommentedMap | None:
    """A new validation mapping, written as a block (as the example writes them)."""
    if not command:
        return None
    out = CommentedMap()
    for key, value in zip(VALIDATION_KEYS, (command, pattern, timeout)):
        if value is not None and value != "":
            out[key] = value
    return out
