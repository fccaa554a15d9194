"""`coord acl`: the Redis ACL users of a namespace, a user per repo's workers and per role."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_option, say
from coordination.errors import UsageError
from coordination.keys import Keys


@click.command()
@click.option("--repos", "selector", default=None, metavar="SELECTOR",
              help="The repos whose worker users to write (a selector: names, tag:, "
              "globs...); default every repo of the catalog.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Send the ACL SETUSER commands to the server of COORD_REDIS_URL (a new "
              "user gets a random password, printed once; an existing one keeps its own).")
@json_option
@click.pass_obj
def acl(obj: Context, selector: str | None, do_apply: bool, as_json: bool) -> None:
    """Redis ACL users so that a worker for repo A touches only A's queue and keys,
    plus what every worker must share: the sweeps' hashes and events, liveness,
    metrics, history, cache, the outbox, shared resources; other repos' queues it may
    only write to (a finish sends the todos that follow), never read or take from. A
    user per repo (coord-worker-<repo>), the supervisor (coord-supervisor: CLIs and the
    supervision passes) and a read-only observer (coord-observer: the web view,
    metrics). Run per-repo workers with COORD_SUPERVISE=0.

    \b
    Examples:
      coord acl
      coord acl --repos 'tag:python' --json
      coord acl --apply
    """
    from coordination.connection.preflight import url_db  # lazy: as acls
    from coordination.runtime import acl as acls  # lazy: redis-py, off `coord --help`
    from coordination.settings import get_settings  # lazy: pydantic, off `coord --help`

    settings = get_settings()
    catalog = obj.manager.catalog()
    names = [r.name for r in catalog.repos]
    if selector is not None:
        from coordination.catalog.selectors import select  # lazy: only with --repos

        chosen = set(select(catalog, selector, obj.file.resolve().parent).names)
        names = [n for n in names if n in chosen]
    if do_apply and settings.embedded:
        raise UsageError("--apply needs a shared Redis (COORD_REDIS_URL): the embedded "
                         "server is private to this catalog",
                         hint="set COORD_REDIS_URL, or drop --apply to print the lines")
    db = url_db(settings.redis_url) if settings.redis_url else 0
    wanted = acls.users(Keys(settings.namespace), names, db)
    created: dict[str, str] = {}
    if do_apply:
        from coordination.runtime.context import get_runtime  # lazy: as above

        created = acls.apply(get_runtime(obj.file).redis, wanted)
    doc = {"namespace": settings.namespace, "db": db, "applied": do_apply,
           "users": [{"user": u.user, "role": u.role, "repo": u.repo, "rules": u.rules,
                      "line": acls.setuser_line(u)} for u in wanted],
           "created": created}

    def human(d: dict[str, object]) -> None:
        for u in wanted:
            click.echo(acls.setuser_line(u) + ("" if do_apply or u.user in created
                                               else " '>PASSWORD'"))
        if do_apply:
            say(f"applied {len(wanted)} user(s) to {esc(settings.namespace)}")
        for user, password in created.items():
            say(f"created {esc(user)}: password {esc(password)} (shown once)")

    emit(as_json, doc, human)
