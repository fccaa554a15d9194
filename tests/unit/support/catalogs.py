"""Shared catalogs helpers for unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from coordination.catalog.models import Catalog


ROOT = Path(__file__).resolve().parents[3]
REPOS = ("api", "web", "jobs")
#: A catalog with comments and blank lines everywhere a write must keep them.
COMMENTED = ROOT / "tests" / "unit" / "fixtures" / "commented.yaml"


def write_repo_a_catalog(tmp: Path, todos: str, extra: str = "") -> Path:
    """``tmp``/ecosystem.yaml: one repo, a (at ``tmp``/a), one active plan, PLAN-001,
    the ``todos`` given (YAML items, one a line), then ``extra`` (top-level sections)."""
    eco = tmp / "ecosystem.yaml"
    eco.write_text("version: 1\nrepos:\n  - {name: a, path: a}\ncoordination:\n"
                   "  plans:\n    - {id: PLAN-001, title: p, status: active}\n"
                   f"  todos:\n{todos}{extra}")
    return eco


def catalog_data(
    n: int,
    edges: Iterable[tuple[int, int]],
    *,
    hours: Sequence[float | None] | None = None,
    repos: Sequence[str] = REPOS,
    overrides: dict[int, dict[str, Any]] | None = None,
    extra_todos: Sequence[dict[str, Any]] = (),
    issues: Sequence[dict[str, Any]] = (),
    plans: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A version-1 catalog as plain data: PLAN-1 holds TODO-0..n-1, edge (u, v) = v after u."""
    preds: dict[int, list[str]] = {i: [] for i in range(n)}
    for u, v in edges:
        if tid(u) not in preds[v]:
            preds[v].append(tid(u))
    todos = []
    for i in range(n):
        t: dict[str, Any] = {"id": tid(i), "task": f"task {i}", "repo": repos[i % len(repos)],
                             "plan": "PLAN-1", "run": f"echo {i}", "blocked_by": preds[i]}
        if hours is not None and hours[i] is not None:
            t["estimated_hours"] = hours[i]
        t.update((overrides or {}).get(i, {}))
        todos.append(t)
    return {
        "version": 1,
        "repos": [{"name": r} for r in repos],
        "coordination": {
            "issues": list(issues),
            "plans": [{"id": "PLAN-1", "title": "test plan", "status": "active"}, *plans],
            "todos": todos + list(extra_todos),
        },
    }


def catalog_from_edges(n: int, edges: Iterable[tuple[int, int]], **kw: Any) -> Catalog:
    return Catalog.model_validate(catalog_data(n, edges, **kw))


def example() -> Catalog:
    return Catalog.model_validate(yaml.safe_load((ROOT / "ecosystem.yaml").read_text()))


def tid(i: int) -> str:
    return f"TODO-{i}"


def svc_fleet(root: Path, repos: Sequence[str], coordination: dict[str, Any]) -> Path:
    """``root/ecosystem.yaml``: ``repos`` (each checked out at ``root/<name>``, tagged
    ``svc``) and the ``coordination`` section given; its path."""
    for r in repos:
        (root / r).mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "repos": [{"name": r, "path": r, "tags": ["svc"]} for r in repos],
        "coordination": coordination,
    }
    eco = root / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco
