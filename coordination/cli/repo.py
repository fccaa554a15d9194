"""`coord repo`: the repos of the catalog, each one's status and blockers."""

from __future__ import annotations

from typing import Any

import click

from coordination.cli.render import emit, esc, fields, json_option, say, styled, table


@click.group()
def repo() -> None:
    """Repos: list, status, blocking."""


def _live_workers() -> dict[str, int] | None:
    """Repo -> live workers (0 everywhere embedded: its workers live only inside a
    sweep's process); None, with a warning, when the shared Redis cannot be read."""
    from coordination.settings import get_settings

    if get_settings().embedded:
        return {}
    try:
        from coordination.runtime.context import get_runtime

        return dict(get_runtime().workers.per_repo())
    except Exception as exc:  # a catalog listing must not need Redis
        from coordination.cli.render import err_console
        from coordination.redis_url import scrub

        err_console().print(f"[yellow]warning:[/yellow] live workers unknown: "
                            f"{scrub(str(exc), get_settings().redis_url)}")
        return None


@repo.command("list")
@json_option
@click.pass_obj
def list_repos(obj: Any, as_json: bool) -> None:
    """List the repos and where their checkouts are.

    \b
    Example:
      coord repo list --json
    """
    from coordination.catalog.reports import repo_list

    items = repo_list(obj.manager, _live_workers())

    def human(repos: list[dict[str, Any]]) -> None:
        table(
            "Repos",
            ["name", "role", "checkout", "tags", "concurrency", "workers", "description"],
            [
                (esc(r["name"]), esc(r["role"]), esc(r["checkout"]), esc(", ".join(r["tags"])),
                 r["concurrency"], "?" if r["workers"] is None else r["workers"],
                 esc(r["description"]))
                for r in repos
            ],
            empty="no repos in the catalog",
        )

    emit(as_json, items, human)


def _blockers_table(title: str, blockers: list[dict[str, Any]], empty: str) -> None:
    table(
        title,
        ["kind", "id", "waits on", "reason"],
        [(b["kind"], b["id"], esc(", ".join(b["waits_on"])), esc(b["reason"])) for b in blockers],
        empty=empty,
    )


@repo.command("status")
@click.argument("name")
@json_option
@click.pass_obj
def repo_status(obj: Any, name: str, as_json: bool) -> None:
    """One repo at a glance: open issues, todos, dependencies, blockers.

    \b
    Example:
      coord repo status api
    """
    status = obj.manager.repo_status(name)

    def human(s: dict[str, Any]) -> None:
        r = s["repo"]
        checkout = esc(s["checkout"]) + ("" if s["checkout_exists"] else " [red](missing)[/red]")
        todo_counts = ", ".join(f"{styled(k)} {len(v)}" for k, v in s["todos"].items())
        fields(f"repo {esc(r['name'])}", [
            ("role", esc(r["role"])), ("checkout", checkout), ("todos", todo_counts or "none"),
        ])
        table(
            "Open issues", ["id", "status", "priority", "title"],
            [(i["id"], styled(i["status"]), styled(i["priority"]), esc(i["title"]))
             for i in s["open_issues"]],
            empty="no open issues",
        )
        deps = [("consumes", d["provider"], d) for d in s["consumes"]]
        deps += [("provides", d["consumer"], d) for d in s["provides"]]
        table(
            "Dependencies", ["id", "direction", "other repo", "type", "status"],
            [(d["id"], way, esc(other), d["type"], styled(d["status"])) for way, other, d in deps],
            empty="no dependencies",
        )
        _blockers_table("Blocked by", s["blocked_by"], "nothing blocks it")

    emit(as_json, status, human)


@repo.command("blocking")
@click.argument("name")
@json_option
@click.pass_obj
def repo_blocking(obj: Any, name: str, as_json: bool) -> None:
    """What blocks this repo: unsatisfied dependencies, waiting issues and todos.

    \b
    Example:
      coord repo blocking web
    """
    blockers = obj.manager.blocking(name)

    def human(doc: dict[str, Any]) -> None:
        if not doc["blockers"]:
            say(f"nothing blocks {esc(name)}")
            return
        _blockers_table(f"What blocks {esc(name)}", doc["blockers"], "")

    emit(as_json, {"repo": name, "blocked": bool(blockers), "blockers": blockers}, human)
