"""`coord repo`: the repos of the catalog, each one's status and blockers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import click

from coordination.catalog.reads.repo_status import (
    BlockingDocument,
    Consumed,
    Provided,
    RepoBlocker,
    RepoStatus,
)
from coordination.catalog.reads.reports import repo_list
from coordination.cli.context import Context, current_file
from coordination.cli.editing import given, updated
from coordination.cli.options import one_item, order_options
from coordination.cli.render import (
    emit,
    err_console,
    esc,
    fields,
    json_and_context,
    print_json,
    say,
    split_list,
    styled,
    table,
)
from coordination.errors import UsageError
from coordination.redis_url import scrub
from coordination.settings import get_settings

if TYPE_CHECKING:
    from coordination.catalog.edits.repo_edits import RepoChanges, RepoDeleted, RepoFields
    from coordination.runtime.context import Runtime

Breaker = dict[str, str | int | float | None]
_BREAKER_EXAMPLE = "failures=3,cooldown=300"


def land_options(f: Callable[..., None]) -> Callable[..., None]:
    """The repo's 0.3 fields: landing, breaker, cache, pace (and their removals)."""
    for option in reversed((
        click.option("--default-branch", metavar="BRANCH",
                     help="The base a change branches from and lands on ('' removes it: main)."),
        click.option("--remote", metavar="NAME",
                     help="The remote a change lands on ('' removes it: origin)."),
        click.option("--land-command", metavar="CMD",
                     help="What lands a change with land: command ('' removes it)."),
        click.option("--revert-command", metavar="CMD",
                     help="What reverts a landed change with land: command ('' removes it)."),
        click.option("--prepare", metavar="CMD",
                     help="Run once in each new change worktree before its todos (build a C "
                     "extension, npm ci); '' removes it."),
        click.option("--land-hooks/--no-land-hooks", "land_hooks", default=None,
                     help="Run git hooks on coord's own pushes and merges (default: off)."),
        click.option("--breaker", metavar="SPEC",
                     help="Hold its todos after this many failures in a row: failures, "
                     f"cooldown (seconds); {_BREAKER_EXAMPLE} or a flow mapping "
                     "{failures: 3}. '' removes it."),
        click.option("--no-breaker", "no_breaker", is_flag=True, help="Remove its breaker."),
        click.option("--cache", "cache", is_flag=False, flag_value="true", default=None,
                     metavar="[SPEC]",
                     help="Cache every todo of the repo (unless one says otherwise): "
                     "--cache alone is `cache: true`; or env=A+B,inputs=.env,probes=CMD, "
                     "or a flow mapping {probes: [python --version]}."),
        click.option("--no-cache", "no_cache", is_flag=True, help="Remove its cache:."),
        click.option("--pace", metavar="SPEC",
                     help="How fast its todos may start: key, rate, burst; "
                     "rate=10/hour,burst=2 or a flow mapping. '' removes it."),
        click.option("--no-pace", "no_pace", is_flag=True, help="Remove its pace."),
        click.option("--forge", metavar="KIND:PROJECT",
                     help="The forge holding its pull requests: github:OWNER/NAME, "
                     "gitlab:GROUP/NAME, gitea:OWNER/NAME ('' removes forge:)."),
        click.option("--forge-api", "forge_api", metavar="URL",
                     help="The forge's API root (default per kind; https://, http:// only "
                     "to localhost; '' for the default)."),
        click.option("--token-env", "token_env", metavar="NAME",
                     help="The environment variable holding the forge's token (default "
                     "GITHUB_TOKEN, GITLAB_TOKEN, GITEA_TOKEN; '' for the default)."),
    )):
        f = option(f)
    return f


def _forge_fields(forge: str | None, forge_api: str | None, token_env: str | None,
                  *, new: bool) -> RepoFields:
    """``--forge KIND:PROJECT``, ``--forge-api``, ``--token-env`` as ``forge:``'s entries
    (None removes one; ``--forge ''`` removes the field); the loader checks the values
    (:class:`~coordination.catalog.models.RepoForge`: its message, exit 2)."""
    out: RepoFields = {}
    if forge is not None and not forge.strip():
        if forge_api is not None or token_env is not None:
            raise UsageError("--forge '' removes the forge; --forge-api and --token-env "
                             "have nothing to belong to", hint="leave them out")
        out["forge"] = None
        return out
    entries: dict[str, object] = {}
    if forge is not None:
        kind, colon, project = forge.strip().partition(":")
        if not colon or not kind or not project.strip():
            raise UsageError(f"bad --forge {forge!r}: not KIND:PROJECT",
                             hint="e.g. --forge github:acme/libcore, gitlab:group/sub/name, "
                             "gitea:owner/name")
        entries.update(kind=kind.strip(), project=project.strip())
    if forge_api is not None:
        entries["api"] = forge_api.strip() or None
    if token_env is not None:
        entries["token_env"] = token_env.strip() or None
    if entries:
        if new and "kind" not in entries:
            raise UsageError("--forge-api and --token-env belong to a forge",
                             hint="add --forge KIND:PROJECT (e.g. github:acme/libcore)")
        out["forge"] = entries
    return out


def _land_fields(default_branch: str | None, remote: str | None, land_command: str | None,
                 revert_command: str | None, land_hooks: bool | None, breaker: str | None,
                 no_breaker: bool, cache: str | None, no_cache: bool, pace: str | None,
                 no_pace: bool, prepare: str | None = None) -> RepoFields:
    """The repo's 0.3 fields given (None removes one), parsed; the loader checks them."""
    from coordination.catalog.models import Breaker as BreakerModel, Pace  # lazy: pydantic models, repo edits only
    from coordination.cli.fieldspec import cache_value, spec_or_off  # lazy: pydantic models, repo edits only

    out: RepoFields = {}
    if default_branch is not None:
        out["default_branch"] = default_branch or None
    if remote is not None:
        out["remote"] = remote or None
    if land_command is not None:
        out["land_command"] = land_command or None
    if revert_command is not None:
        out["revert_command"] = revert_command or None
    if land_hooks is not None:
        out["land_hooks"] = land_hooks
    if prepare is not None:
        out["prepare"] = prepare or None
    specs = {**spec_or_off("breaker", breaker, no_breaker, BreakerModel, _BREAKER_EXAMPLE),
             **spec_or_off("pace", pace, no_pace, Pace, "rate=10/hour,burst=2")}
    if "breaker" in specs:
        out["breaker"] = specs["breaker"]
    if "pace" in specs:
        out["pace"] = specs["pace"]
    if cache is not None or no_cache:
        out["cache"] = cache_value(cache, no_cache)
    return out


@click.group()
def repo() -> None:
    """Repos: list, status, blocking, reset, add, update, remove.

    \b
    Examples:
      coord repo status api
      coord repo add docs --path repos/docs
    """


def _runtime() -> Runtime:
    """The shared Redis: for `repo list` (live workers, breakers) and `repo reset`."""
    # lazy: redis-py; `repo status` and `repo blocking` read only the catalog
    from coordination.runtime.context import get_runtime

    return get_runtime(current_file())


def _breakers(names: list[str]) -> dict[str, Breaker]:
    """Repo -> breaker state, for the repos with a breaker (none embedded, or when
    Redis cannot be read: the listing says so through ``workers``)."""
    if get_settings().embedded or not names:
        return {}
    try:
        rt = _runtime()
        return {n: rt.breakers.state(n) for n in names}
    except Exception:  # a catalog listing must not need Redis
        return {}


def _live_workers() -> dict[str, int] | None:
    """Repo -> live workers (0 everywhere embedded: its workers live only inside a
    sweep's process); None, with a warning, when the shared Redis cannot be read."""
    if get_settings().embedded:
        return {}
    try:
        return dict(_runtime().workers.per_repo())
    except Exception as exc:  # a catalog listing must not need Redis
        err_console().print(f"[yellow]warning:[/yellow] live workers unknown: "
                            f"{esc(scrub(str(exc), get_settings().redis_url))}")
        return None


@repo.command("list")
@click.option("--repos", "selector", default=None, metavar="SELECTOR",
              help="Only the repos a selector selects (names, globs, tag:T, role:R, "
              "changed:REF, NAME..., ...NAME, NAME^..., ...^NAME, !EXCLUDED; commas join; "
              "A&B: what both select; exclusions alone: every repo but those; "
              "changed:REF is changed since the merge-base of REF and HEAD).")
@click.option("--order", "ordered", is_flag=True,
              help="In the order dependency-ordered work runs them (`coord run --order deps`): "
              "by level, a cycle's repos one group in name order; --json gives "
              "{repos, levels, groups, warnings}.")
@order_options("With --order: the dependency types that order (default the catalog's "
               "order.by, runtime,build,peer).",
               "With --order: a cycle is a group (warned) or refused (exit 2).")
@json_and_context
def list_repos(obj: Context, selector: str | None, ordered: bool, order_by: str | None,
               cycles: str | None, as_json: bool) -> None:
    """List the repos and where their checkouts are; with --repos, what a selector selects.

    \b
    Examples:
      coord repo list --json
      coord repo list --repos 'tag:python,!legacy'
      coord repo list --repos '...api' --json
      coord repo list --order --order-by runtime,dev
    """
    if (order_by is not None or cycles is not None) and not ordered:
        raise UsageError("--order-by and --cycles say how --order orders",
                         hint="add --order (coord repo list --order --order-by runtime,dev)")
    chosen: set[str] | None = None
    if selector is not None:
        from coordination.catalog.selection.selectors import select  # lazy: only with --repos

        chosen = set(select(obj.manager.reads.catalog(), selector,
                            obj.file.resolve().parent).names)
    live = _live_workers()
    with_breaker = [r.name for r in obj.manager.reads.list_repos() if r.breaker is not None
                    and (chosen is None or r.name in chosen)]
    items = repo_list(obj.manager.reads, live, _breakers(with_breaker) if live is not None else {})
    if chosen is not None:
        items = [r for r in items if r["name"] in chosen]
    if ordered:
        _list_ordered(obj, items, order_by, cycles, as_json)
        return

    def human(repos: list[dict[str, object]]) -> None:
        table(
            "Repos",
            ["name", "role", "checkout", "tags", "concurrency", "workers", "breaker",
             "description"],
            [
                (esc(r["name"]), esc(r["role"]), esc(r["checkout"]), esc(", ".join(_tags(r))),
                 r["concurrency"], "?" if r["workers"] is None else r["workers"],
                 _breaker_text(r), esc(r["description"]))
                for r in repos
            ],
            empty="no repos in the catalog",
        )

    emit(as_json, items, human)


def _list_ordered(obj: Context, items: list[dict[str, object]], order_by: str | None,
                  cycles: str | None, as_json: bool) -> None:
    """`repo list --order`: the rows in run order, each with its level and cycle group."""
    from coordination.catalog.selection.ordering import order_repos  # lazy: only with --order

    ordering = order_repos(obj.manager.reads.catalog(), [str(r["name"]) for r in items],
                           by=order_by, cycles=cycles, hint=CYCLE_HINT)
    level, group = ordering.level_of(), ordering.group_of()
    rank = {r: i for i, r in enumerate(ordering.run_order())}
    rows = sorted(({**r, "level": level[str(r["name"])], "group": group.get(str(r["name"]))}
                   for r in items), key=lambda r: rank[str(r["name"])])
    if as_json:
        print_json({"repos": rows, "levels": ordering.levels, "groups": ordering.groups,
                    "warnings": ordering.warnings, "cycle_edges_dropped": ordering.dropped})
        return
    for w in ordering.warnings:
        err_console().print(f"[yellow]warning:[/yellow] {esc(w)}")
    table("Repos in run order", ["level", "name", "group", "role", "checkout", "tags"],
          [(str(r["level"]), esc(r["name"]),
            "" if r["group"] is None else f"cycle {r['group']}", esc(r["role"]),
            esc(r["checkout"]), esc(", ".join(_tags(r)))) for r in rows],
          empty="no repos in the catalog")


#: What `repo list --order` refused for a cycle may do instead (each works as written).
CYCLE_HINT = ("pass --cycles group to list each cycle as one group (or set order: "
              "{cycles: group} in the catalog)")


def _tags(r: Mapping[str, object]) -> list[str]:
    tags = r.get("tags")
    return [str(t) for t in tags] if isinstance(tags, list) else []


def _breaker_text(r: Mapping[str, object]) -> str:
    breaker = r.get("breaker")
    if breaker is None:
        return ""
    st = r.get("breaker_state")
    if st is None:
        assert isinstance(breaker, Mapping)
        return f"after {breaker['failures']}"
    assert isinstance(st, Mapping)
    text = styled(str(st["state"]))
    return text + (f" ({st['failures']} failed)" if st["failures"] else "")


@one_item(repo.command("reset"), "name")
def repo_reset(obj: Context, name: str, as_json: bool) -> None:
    """Close a repo's circuit breaker by hand; its held todos then run.

    \b
    Example:
      coord repo reset api
    """
    repo_ = obj.manager.reads.get_repo(name)  # unknown name: exit 2 with the known ones
    if get_settings().embedded:
        raise UsageError(
            "embedded mode keeps no breaker between runs: nothing to reset",
            hint="breakers live in the shared Redis: set COORD_REDIS_URL")
    before = _runtime().breakers.reset(name)
    doc: dict[str, object] = {"repo": name, "was": before["state"], "failures": before["failures"],
           "state": "closed", "configured": repo_.breaker is not None}

    def human(d: dict[str, object]) -> None:
        if d["was"] == "closed" and not d["failures"]:
            say(f"the breaker of {esc(name)} was closed already")
        else:
            say(f"closed the breaker of {esc(name)} (was {d['was']}, {d['failures']} failures); "
                "its held todos run at the supervisor's next pass")

    emit(as_json, doc, human)


def _blockers_table(title: str, blockers: list[RepoBlocker], empty: str) -> None:
    table(
        title,
        ["kind", "id", "waits on", "reason"],
        [(b["kind"], esc(b["id"]), esc(", ".join(b["waits_on"])), esc(b["reason"]))
         for b in blockers],
        empty=empty,
    )


@one_item(repo.command("status"), "name")
def repo_status(obj: Context, name: str, as_json: bool) -> None:
    """One repo at a glance: open issues, todos, dependencies, blockers.

    \b
    Example:
      coord repo status api
    """
    status = obj.manager.reports.repo_status(name)

    def human(s: RepoStatus) -> None:
        r = s["repo"]
        checkout = esc(s["checkout"]) + ("" if s["checkout_exists"] else " [red](missing)[/red]")
        todo_counts = ", ".join(f"{styled(k)} {len(v)}" for k, v in s["todos"].items())
        fields(f"repo {esc(r['name'])}", [
            ("role", esc(r["role"])), ("checkout", checkout), ("todos", todo_counts or "none"),
        ])
        table(
            "Open issues", ["id", "status", "priority", "title"],
            [(esc(i["id"]), styled(i["status"]), styled(i["priority"]), esc(i["title"]))
             for i in s["open_issues"]],
            empty="no open issues",
        )
        deps: list[tuple[str, str, Consumed | Provided]] = [
            ("consumes", d["provider"], d) for d in s["consumes"]]
        deps += [("provides", d["consumer"], d) for d in s["provides"]]
        table(
            "Dependencies", ["id", "direction", "other repo", "type", "status"],
            [(esc(d["id"]), way, esc(other), d["type"], styled(d["status"]))
             for way, other, d in deps],
            empty="no dependencies",
        )
        _blockers_table("Blocked by", s["blocked_by"], "nothing blocks it")

    emit(as_json, status, human)


@one_item(repo.command("blocking"), "name")
def repo_blocking(obj: Context, name: str, as_json: bool) -> None:
    """What blocks this repo: unsatisfied dependencies, waiting issues and todos.

    \b
    Example:
      coord repo blocking web
    """

    def human(doc: BlockingDocument) -> None:
        if not doc["blockers"]:
            say(f"nothing blocks {esc(name)}")
            return
        _blockers_table(f"What blocks {esc(name)}", doc["blockers"], "")

    emit(as_json, obj.manager.reports.blocking_document(name), human)


@repo.command("add")
@click.argument("name")
@click.option("--path", help="Its checkout, relative to the catalog (default: its name).")
@click.option("--description", default="", help="What it is.")
@click.option("--role", default="", help="library, service, frontend...")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for more.")
@click.option("--concurrency", type=click.IntRange(1, 1024),
              help="How many of its todos may run at once (default 1).")
@click.option("--url", metavar="URL", help="Where it is cloned from (no password).")
@land_options
@json_and_context
def repo_add(obj: Context, name: str, path: str | None, description: str, role: str,
             tags: tuple[str, ...], concurrency: int | None, url: str | None,
             default_branch: str | None,
             remote: str | None, land_command: str | None, revert_command: str | None,
             prepare: str | None, land_hooks: bool | None, breaker: str | None, no_breaker: bool,
             cache: str | None, no_cache: bool, pace: str | None, no_pace: bool,
             forge: str | None, forge_api: str | None, token_env: str | None,
             as_json: bool) -> None:
    """Add a repo to the catalog. --breaker, --cache and --pace values are checked as
    the catalog's loader checks them (its message, exit 2, nothing written).

    \b
    Example:
      coord repo add docs --path repos/docs --role site --tag markdown
      coord repo add api --default-branch trunk --land-command "gh pr merge --squash" \\
          --breaker failures=3,cooldown=300 --cache
      coord repo add libcore --forge github:acme/libcore --token-env ACME_GITHUB_TOKEN
    """
    extra = _land_fields(default_branch, remote, land_command, revert_command, land_hooks,
                         breaker, no_breaker, cache, no_cache, pace, no_pace, prepare)
    extra.update(_forge_fields(forge, forge_api, token_env, new=True))
    if url:
        extra["url"] = url
    added = obj.manager.repos.add(name, path=path, description=description, role=role,
                                  tags=split_list(tags), concurrency=concurrency,
                                  **extra)
    emit(as_json, added, lambda r: say(f"added {esc(r.name)}"))


@repo.command("update")
@click.argument("name")
@click.option("--path", help="New checkout path ('' for the default, its name).")
@click.option("--description", help="New description ('' to clear).")
@click.option("--role", help="New role ('' to clear).")
@click.option("--tag", "tags", multiple=True, help="Replace the tags; repeat for more.")
@click.option("--concurrency", type=click.IntRange(1, 1024), help="New concurrency.")
@click.option("--url", metavar="URL", help="Where it is cloned from ('' removes it).")
@land_options
@json_and_context
def repo_update(obj: Context, name: str, path: str | None, description: str | None,
                role: str | None, tags: tuple[str, ...], concurrency: int | None,
                url: str | None,
                default_branch: str | None, remote: str | None, land_command: str | None,
                revert_command: str | None, prepare: str | None, land_hooks: bool | None,
                breaker: str | None, no_breaker: bool, cache: str | None, no_cache: bool,
                pace: str | None, no_pace: bool, forge: str | None, forge_api: str | None,
                token_env: str | None, as_json: bool) -> None:
    """Change fields of a repo (only those given; not its name, which everything names).
    --breaker, --cache and --pace replace the whole value; values are checked as the
    catalog's loader checks them (its message, exit 2, nothing written).

    \b
    Example:
      coord repo update api --concurrency 2 --tag python --tag http
      coord repo update api --default-branch trunk --no-land-hooks --breaker failures=5
      coord repo update api --land-command '' --no-cache
      coord repo update fastlib --prepare 'python setup.py build_ext --inplace'
      coord repo update libcore --forge gitlab:acme/core/libcore --forge-api https://git.acme.dev
      coord repo update libcore --token-env ''
      coord repo update libcore --forge ''
    """
    changes: RepoChanges = given(path=path, description=description, role=role,
                                 concurrency=concurrency,
                                 tags=split_list(tags) if tags else None)
    if url is not None:
        changes["url"] = url or None
    changes.update(_land_fields(  # type: ignore[typeddict-item]  # (mypy: a TypedDict's base)
        default_branch, remote, land_command, revert_command, land_hooks, breaker, no_breaker,
        cache, no_cache, pace, no_pace, prepare))
    changes.update(_forge_fields(forge, forge_api, token_env, new=False))  # type: ignore[typeddict-item]
    updated(as_json, changes, lambda: obj.manager.repos.update(name, **changes), key="name")


@repo.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Remove it even while named: its todos and dependencies are deleted too, "
              "and it leaves the issues' and plans' repos.")
@json_and_context
def repo_remove(obj: Context, name: str, force: bool, as_json: bool) -> None:
    """Remove a repo. Refused (exit 2, naming each by file and line) while todos run in
    it, dependencies name it or issues and plans list it, unless --force.

    \b
    Example:
      coord repo remove docs
      coord repo remove legacy --force --json
    """
    def human(doc: RepoDeleted) -> None:
        say(f"removed {esc(doc['deleted'])}")
        if doc["deleted_todos"]:
            say(f"deleted its todos {esc(', '.join(doc['deleted_todos']))}")
        if doc["deleted_dependencies"]:
            say(f"deleted the dependencies {esc(', '.join(doc['deleted_dependencies']))}")
        dropped = [d for d in doc["dropped"] if not d["mirror"]]
        if dropped:
            say("dropped references from " + ", ".join(
                esc(f"{d['id']}.{d['field']}") for d in dropped))

    emit(as_json, obj.manager.repos.remove(name, force=force), human)
