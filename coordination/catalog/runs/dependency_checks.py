"""`coord dep check`: run the dependencies' validation commands, a few at a time, and
record the outcomes in one catalog edit
(:meth:`~coordination.catalog.edits.dependency_edits.Dependencies.check`)."""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.runs.depcheck import SATISFIED, SKIPPED, UNSATISFIED, CheckResult, run_check
from coordination.catalog.edits.document import DEP_KEYS, put, section
from coordination.catalog.models import Dependency

if TYPE_CHECKING:
    from coordination.catalog.file.store import CatalogStore
    from coordination.catalog.reads.queries import CatalogReads


def check_dependencies(store: CatalogStore, reads: CatalogReads, *, consumer: str | None = None,
                       only: Collection[str] | None = None) -> list[CheckResult]:
    """Run the validation commands and record the outcomes, in one catalog edit.

    A dependency without a validation command is reported ``skipped`` and
    keeps its status. Checks run a few at a time: each may wait on its timeout.
    ``only``: just these dependency ids (a scoped MCP server's own).
    """
    cat = reads.catalog()
    reads.repo(cat, consumer)
    deps = [d for d in cat.coordination.dependencies if consumer in (None, d.consumer)
            and (only is None or d.id in only)]

    def one(d: Dependency) -> CheckResult:
        assert d.validation is not None
        repo = cat.repo(d.consumer)
        assert repo is not None  # the store checked every reference
        return run_check(
            d.id, d.validation.command, reads.checkout(repo),
            expected_pattern=d.validation.expected_pattern, timeout=d.validation.timeout,
        )

    runnable = [d for d in deps if d.validation is not None]
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(runnable)))) as pool:
        ran = dict(zip([d.id for d in runnable], pool.map(one, runnable)))
    results = []
    for d in deps:
        r = ran.get(d.id) or CheckResult(
            d.id, SKIPPED, None, f"no validation command; status stays {d.status.value}"
        )
        results.append(replace(r, consumer=d.consumer, provider=d.provider))
    before = {d.id: d.status.value for d in deps}
    changed = {
        r.id: r.status for r in results
        if r.status in (SATISFIED, UNSATISFIED) and before[r.id] != r.status
    }
    if changed:

        def record(doc: CommentedMap) -> None:
            for item in section(doc, "dependencies"):
                if isinstance(item, CommentedMap) and item.get("id") in changed:
                    put(item, "status", changed[item["id"]], DEP_KEYS)

        store.update(record)
    return results
