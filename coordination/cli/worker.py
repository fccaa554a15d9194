"""`coord worker` and `coord flower`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from coordination.cli.context import Context
from coordination.errors import UsageError
from coordination.processes import not_dumpable
# Set (to 1) only by `coord flower --allow-control` for the Flower it execs; read by
# workers/flower_app.py, which otherwise refuses Flower's task and worker-control endpoints.
from coordination.settings import FLOWER_ALLOW_CONTROL_ENV as ALLOW_CONTROL_ENV
from coordination.settings import get_settings

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--repo", "repos", multiple=True,
              help="Repo whose queue this worker serves; repeat to serve several.")
@click.option("--repos", "selector", default=None, metavar="SELECTOR",
              help="The repos a selector selects in the catalog, as every --repos takes it "
              "(names, globs, tag:T, role:R, changed:REF, NAME..., ...NAME, !EXCLUDED; "
              "commas join; A&B: what both select); with --repo, both.")
@click.option("--path", "paths", multiple=True, metavar="[REPO=]DIR",
              help="Checkout directory (default: the catalog's path): DIR for a worker of one "
                   "repo, REPO=DIR (repeat) for a worker of several.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Todos run at once, for a worker of one repo (default: the repo's "
                   "concurrency; a worker of several repos gives each its own).")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes for a worker of several repos, each serving its share "
                   "of them (default: one per usable core on Linux, at most one per repo; "
                   "1 elsewhere).")
@click.option("--loglevel", default="INFO", show_default=True,
              help="Celery's log level (DEBUG, INFO, WARNING, ERROR).")
@click.option("--todo-user", default=None, metavar="NAME",
              help="Run todos as this OS user (coord worker runs as root): a todo then "
                   "cannot read the worker's environment or memory (its signing key, its "
                   "Redis password). The user needs read and write access to each checkout.")
@click.pass_obj
def worker(obj: Context, repos: tuple[str, ...], selector: str | None, paths: tuple[str, ...],
           concurrency: int | None, processes: int | None, loglevel: str,
           todo_user: str | None) -> None:
    """Run a Celery worker for one or more repos (needs COORD_REDIS_URL).

    A worker of several repos forks worker processes, each serving its share of them
    (--processes); signal this process: it stops, restarts and watches them.

    \b
    Examples:
      COORD_REDIS_URL=redis://localhost:6379/0 coord worker --repo api --path ~/src/api
      COORD_REDIS_URL=redis://localhost:6379/0 coord worker --repo api --repo web
      coord worker --repo api --repo web --path api=~/src/api --path web=~/src/web
      coord worker --repos 'tag:python,!legacy'         # every Python repo but legacy
      sudo coord worker --repo api --todo-user coord-todo  # root's key, todos as another user
    """
    # First: it holds the signing key and a Redis password, and runs repos' code as its
    # own user: no todo reads its /proc/<pid>/environ or memory.
    not_dumpable()
    from workers.worker import run_worker  # lazy: Celery; `coord flower` execs its own

    names = list(repos)
    if selector is not None:
        names += worker_repos(obj.file, selector)
    if not names:
        raise UsageError("coord worker needs the repos it serves",
                         hint="--repo NAME (repeat for several), or --repos SELECTOR "
                         "('tag:python', 'svc-*')")
    sys.exit(run_worker(obj.file, list(dict.fromkeys(names)), path=list(paths),
                        concurrency=concurrency, processes=processes, loglevel=loglevel,
                        todo_user=todo_user))


def worker_repos(file: Path, selector: str) -> list[str]:
    """The repos ``--repos SELECTOR`` selects in the catalog at ``file`` (catalog
    order); a UsageError when there is no catalog to select from."""
    if not file.is_file():
        raise UsageError(f"--repos {selector!r} selects from the catalog, and there is none "
                         f"at {file}",
                         hint="pass --file FILE (or set COORD_ECOSYSTEM), or name each repo "
                         "with --repo NAME")
    from coordination.catalog.selection.selectors import select  # lazy: only with --repos
    from coordination.catalog.file.store import CatalogStore  # lazy: pydantic models

    return select(CatalogStore(file).load(), selector, file.resolve().parent).names


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True,
              help="TCP port Flower listens on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind; off localhost, COORD_FLOWER_AUTH is required.")
@click.option("--allow-control", is_flag=True, default=False,
              help="Also serve Flower's endpoints that send tasks and control workers "
                   "(refused by default; needs COORD_FLOWER_AUTH).")
@click.pass_obj
def flower(obj: Context, port: int, address: str, allow_control: bool) -> None:
    """Run Flower (Celery monitoring) on coord's app, read-only.

    Basic auth comes from COORD_FLOWER_AUTH=user:password and is required
    unless Flower binds to localhost. Flower's endpoints that send tasks or
    control workers (apply, send-task, revoke, abort, rate and time limits,
    shutdown, pool, consumers) answer 403 unless --allow-control is given.

    \b
    Example:
      COORD_FLOWER_AUTH=admin:s3cret coord flower --address 0.0.0.0 --port 5555
    """
    settings = get_settings()
    if settings.embedded:
        raise UsageError("coord flower needs COORD_REDIS_URL (embedded sweeps have no broker to watch)")
    args = flower_argv(port=port, address=address, auth=settings.flower_auth,
                       allow_control=allow_control)
    env = dict(os.environ)
    env.pop(ALLOW_CONTROL_ENV, None)
    # Flower's broker page lists the catalog's queues (workers/flower_app.py).
    env["COORD_ECOSYSTEM"] = str(obj.file.absolute())
    if not settings.flower_auth:
        # Flower 2 serves its GET API only with authentication unless told otherwise; on
        # localhost (the only place coord serves it without auth) it answers curl and
        # scripts here. workers/flower_app.py drops the cross-origin headers this also
        # turns on, so no other web site can read it from a browser.
        env["FLOWER_UNAUTHENTICATED_API"] = "true"
    if allow_control:
        env[ALLOW_CONTROL_ENV] = "1"
        click.echo("WARNING: --allow-control: anyone who can log in to this Flower can send "
                   "tasks and shut down or reconfigure workers.", err=True)
    os.execvpe(sys.executable, args, env)


def flower_argv(*, port: int, address: str, auth: str | None, allow_control: bool = False) -> list[str]:
    """The `celery flower` command line for coord's app; refuses open, unauthenticated binds
    and control without authentication."""
    if address not in LOCAL_ADDRESSES and not auth:
        raise UsageError(
            f"refusing to serve Flower on {address} without authentication",
            hint="set COORD_FLOWER_AUTH=user:password, or bind --address 127.0.0.1",
        )
    if auth and ":" not in auth:
        raise UsageError("COORD_FLOWER_AUTH must look like user:password")
    if allow_control and not auth:
        raise UsageError("--allow-control needs authentication",
                         hint="set COORD_FLOWER_AUTH=user:password")
    args = [sys.executable, "-m", "celery", "-A", "workers.flower_app", "flower",
            f"--port={port}", f"--address={address}"]
    if not allow_control:
        # Flower's own read-only mode (hides the UI's control buttons); workers/flower_app.py
        # refuses the same endpoints whatever Flower's options say.
        args.append("--read_only=True")
    if auth:
        args.append(f"--basic-auth={auth}")
    return args
