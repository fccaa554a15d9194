"""`coord acl`: the Redis ACL users of a namespace, a user per repo's workers, per role and
per person; `--rotate` gives one of them a new password."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, err_console, esc, json_and_context, say
from coordination.errors import UsageError
from coordination.keys import Keys

if TYPE_CHECKING:
    import redis

    from coordination.runtime.acl import AclUser
    from coordination.settings import Settings

#: What a person's name may be (it is part of a Redis user name).
PERSON_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


@click.command()
@click.option("--repos", "selector", default=None, metavar="SELECTOR",
              help="The repos whose worker users to write, or (with --person) the repos "
              "the person may work on (a selector: names, tag:, globs...); default every "
              "repo of the catalog (--person: required).")
@click.option("--person", default=None, metavar="NAME",
              help="Write the user of one person, coord-person-NAME, instead of the "
              "workers' and roles' users: it may start, steer and read the logs of the "
              "sweeps of the plans (and todos) that run its repos' todos only.")
@click.option("--role", type=click.Choice(["observer", "operator"]), default=None,
              help="With --person: observer (the default) reads the shared records and "
              "the repos' keys; operator also starts, steers and waits on their sweeps.")
@click.option("--rotate", default=None, metavar="USER",
              help="Give USER (a user coord acl made) a new random password, printed "
              "once; the old one stops working at once.")
@click.option("--disconnect", is_flag=True,
              help="With --rotate: also close the connections USER has open (else they "
              "keep working until they close).")
@click.option("--apply", "do_apply", is_flag=True,
              help="Send the ACL SETUSER commands to the server of COORD_REDIS_URL (a new "
              "user gets a random password, printed once; an existing one keeps its own). "
              "Needs Redis 7 or newer: an older one is refused before anything is applied.")
@json_and_context
def acl(obj: Context, selector: str | None, person: str | None, role: str | None,
        rotate: str | None, disconnect: bool, do_apply: bool, as_json: bool) -> None:
    """Redis ACL users so that a worker for repo A touches only A's queue and keys,
    plus what every worker must share: the sweeps' hashes and events, liveness,
    metrics, history, cache, the outbox, shared resources, the shared context; other
    repos' queues it may only push to (a finish sends the todos that follow), never
    read, take, trim or delete; Celery's remote control it may hear, never send. A
    user per repo (coord-worker-<repo>), the supervisor (coord-supervisor: CLIs and
    the supervision passes) and a read-only observer (coord-observer: the web view,
    metrics). Run per-repo workers with COORD_SUPERVISE=0. People get users of their
    own (--person), limited to some repos.

    \b
    Examples:
      coord acl
      coord acl --repos 'tag:python' --json
      coord acl --apply
      coord acl --person alice --repos 'api...' --role operator --apply
      coord acl --rotate coord-worker-api
    """
    from coordination.connection.preflight import url_db  # lazy: as acls
    from coordination.runtime import acl as acls  # lazy: redis-py, off `coord --help`
    from coordination.settings import get_settings  # lazy: pydantic, off `coord --help`

    _check_flags(selector, person, role, rotate, disconnect, do_apply)
    settings = get_settings()
    if (do_apply or rotate) and settings.embedded:
        raise UsageError(f"{'--rotate' if rotate else '--apply'} needs a shared Redis "
                         "(COORD_REDIS_URL): the embedded server is private to this catalog",
                         hint="set COORD_REDIS_URL, or drop --apply to print the lines")
    if rotate is not None:
        _rotate(obj, settings, rotate, disconnect, as_json)
        return
    db = url_db(settings.redis_url) if settings.redis_url else 0
    keys = Keys(settings.namespace)
    names = _names(obj, selector)
    if person is not None:
        plans, todos = _scopes(obj, names)
        wanted = [acls.person(keys, person, names, role or acls.PERSON_ROLES[0], db,
                              plans=plans, todos=todos)]
    else:
        wanted = acls.users(keys, names, db)
    created: dict[str, str] = {}
    saved = False
    if do_apply:
        from coordination.redis_url import redact_url  # lazy: only with --apply
        from coordination.runtime.acl import server as acl_server  # lazy: as acls

        r = _redis(obj)
        who, at = _who(obj), _now()
        created = acl_server.apply(r, wanted, redact_url(settings.redis_url or ""),
                                   keys=keys, who=who, at=at)
        saved = acl_server.save(r)
        _audit(obj, "acl.apply", who, [u.user for u in wanted], {
            "at": at, "namespace": settings.namespace, "saved": saved,
            "created": sorted(created),  # the names: a password is never written down
            "users": [{"user": u.user, "role": u.role, "repo": u.repo,
                       "repos": list(u.repos), "plans": list(u.plans)} for u in wanted]})
    _render(settings.namespace, db, do_apply, wanted, created, saved, as_json,
            _records(obj, keys, wanted) if not do_apply else {})


def _check_flags(selector: str | None, person: str | None, role: str | None,
                 rotate: str | None, disconnect: bool, do_apply: bool) -> None:
    if rotate is not None and (selector or person or role or do_apply):
        raise UsageError("--rotate USER goes alone (with --disconnect, --json)",
                         hint="coord acl --rotate coord-worker-api")
    if disconnect and rotate is None:
        raise UsageError("--disconnect goes with --rotate USER")
    if role is not None and person is None:
        raise UsageError("--role goes with --person NAME",
                         hint="coord acl --person alice --repos api --role operator")
    if person is not None:
        if not PERSON_RE.match(person):
            raise UsageError(f"bad person name {person!r}: 1 to 64 of letters, digits and "
                             "_ . -, starting with a letter or digit",
                             hint="e.g. --person alice or --person j.doe")
        if selector is None:
            raise UsageError("--person NAME needs --repos SELECTOR: the repos the person "
                             "may work on", hint="e.g. --repos 'tag:python' (every repo: "
                             "--repos '*')")


def _names(obj: Context, selector: str | None) -> list[str]:
    catalog = obj.manager.reads.catalog()
    names = [r.name for r in catalog.repos]
    if selector is None:
        return names
    from coordination.catalog.selection.selectors import select  # lazy: only with --repos

    chosen = set(select(catalog, selector, obj.file.resolve().parent).names)
    return [n for n in names if n in chosen]


def _scopes(obj: Context, names: list[str]) -> tuple[list[str], list[str]]:
    """The plans that run todos of ``names`` and those todos (a template's instances
    each), as the planner expands the catalog: a person's user may write their sweeps."""
    from coordination.catalog.selection.templates import planned  # lazy: the planner's view

    chosen = set(names)
    plans: dict[str, None] = {}
    todos: dict[str, None] = {}
    for t in planned(obj.file.resolve()).coordination.todos:
        if t.repo and t.repo in chosen:
            todos[t.id] = None
            if t.plan:
                plans[t.plan] = None
    return sorted(plans), sorted(todos)


def _who(obj: Context) -> str:
    from coordination.catalog.audit.log import who  # lazy: as the steering's audit

    return who(obj.file.resolve().parent)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _audit(obj: Context, op: str, who: str, ids: list[str],
           decision: dict[str, object]) -> None:
    """An entry ``op`` in the catalog's audit log: which users were written or rotated,
    by whom, never a password. Written after Redis took them (what it says happened);
    a log that cannot be written is said on stderr, the users stand."""
    from coordination.catalog.file.store import CatalogStore  # lazy: the catalog's writer

    try:
        CatalogStore(obj.file).record_decision(who=who, op=op, ids=ids, decision=decision)
    except Exception as exc:  # noqa: BLE001 - the users are written: say it, loudly
        err_console().print(f"warning: {esc(op)} of {esc(', '.join(ids))} is not in the "
                            f"audit log: {esc(str(exc))}")


def _redis(obj: Context) -> redis.Redis:
    from coordination.runtime.context import get_runtime  # lazy: as above

    return get_runtime(obj.file).redis


def _records(obj: Context, keys: Keys, wanted: list[AclUser]) -> dict[str, tuple[str, str]]:
    """A person's scope record as the printed lines give it (user -> key, JSON): whoever
    feeds them to redis-cli writes it too (its CLI refuses every sweep without it)."""
    from coordination.runtime import acl as acls  # lazy: as above

    out: dict[str, tuple[str, str]] = {}
    for u in wanted:
        record = acls.scope_record(keys, u, who=_who(obj), at=_now())
        if record is not None:
            out[u.user] = record
    return out


def _set_line(key: str, value: str) -> str:
    """``SET key 'value'`` as one redis-cli line (its single quotes escaped)."""
    return f"SET {key} '" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _render(namespace: str, db: int, applied: bool, wanted: list[AclUser],
            created: dict[str, str], saved: bool, as_json: bool,
            records: dict[str, tuple[str, str]]) -> None:
    from coordination.runtime import acl as acls  # lazy: redis-py, off `coord --help`

    doc = {"namespace": namespace, "db": db, "applied": applied, "saved": saved,
           "users": [{"user": u.user, "role": u.role, "repo": u.repo,
                      "repos": list(u.repos), "plans": list(u.plans),
                      "todos": list(u.todos), "rules": u.rules,
                      "line": acls.setuser_line(u),
                      **({"record": {"key": records[u.user][0], "value": records[u.user][1],
                                     "line": _set_line(*records[u.user])}}
                         if u.user in records else {})} for u in wanted],
           "created": created}

    def human(d: dict[str, object]) -> None:
        for u in wanted:
            if u.user in records:  # (the record first: its CLI never finds the user without)
                click.echo(_set_line(*records[u.user]))
            click.echo(acls.setuser_line(u) + ("" if applied or u.user in created
                                               else " '>PASSWORD'"))
        if applied:
            say(f"applied {len(wanted)} user(s) to {esc(namespace)}"
                + ("" if saved else " (in memory: the server has no ACL file to save "
                   "them in; keep them in its configuration)"))
        for user, password in created.items():
            say(f"created {esc(user)}: password {esc(password)} (shown once)")

    emit(as_json, doc, human)


def _rotate(obj: Context, settings: Settings, user: str, disconnect: bool,
            as_json: bool) -> None:
    from coordination.runtime.acl import server as acl_server  # lazy: redis-py

    done = acl_server.rotate(_redis(obj), user, disconnect=disconnect)
    _audit(obj, "acl.rotate", _who(obj), [done.user], {
        "at": _now(), "user": done.user, "disconnected": done.disconnected,
        "saved": done.saved})
    doc = {"user": done.user, "password": done.password, "disconnected": done.disconnected,
           "saved": done.saved}

    def human(_: object) -> None:
        say(f"rotated {esc(done.user)}: password {esc(done.password)} (shown once; the "
            "old one no longer works)")
        if disconnect:
            say(f"closed {done.disconnected} connection(s) of {esc(done.user)}")
        else:
            say("connections opened with the old password stay open until they close "
                "(--disconnect closes them)")
        if not done.saved:
            say("in memory: the server has no ACL file to save it in")

    emit(as_json, doc, human)
