"""`coord worker --repo NAME [--repo NAME...]`: a Celery worker for repos' queues.

It consumes ``<ns>.repo.<NAME>`` of each repo and the control queue, runs todos
as shell commands in their repo's checkout, and runs a supervisor thread so
sweeps keep moving (lost todos re-sent, deadlines enforced) as long as any
worker lives. One process may serve several repos: its pool has room for each
repo's concurrency, and the repos' leases keep each repo to its own.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import signals
from celery.worker import WorkController

from coordination.catalog.models import Catalog, checkout_path
from coordination.catalog.store import CatalogStore
from coordination.connection.preflight import check_permissions, check_redis
from coordination.dispatch import dispatcher_for
from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime, get_runtime
from coordination.settings import Settings, get_settings
from coordination.sweeps.notify import NotifierThread, publish
from coordination.sweeps.supervision import SupervisorThread
from workers.app import create_app, limits_from_catalog
from workers.liveness import WorkerBeat, start_beat
from workers.runner import WorkerInfo
from workers.tasks import register_worker


#: Repos a worker's name spells out; past them it says how many more. The name is in
#: every checkpoint and event of its todos (``worker``), and a worker of 500 repos
#: named them all in each: 5 KB a checkpoint. `coord workers` lists every repo.
NAMED_REPOS = 3


def worker_hostname(repo: str | list[str]) -> str:
    """Unique per process, so two workers of one repo on one host differ in Flower."""
    repos = [repo] if isinstance(repo, str) else list(repo)
    name = "+".join(repos[:NAMED_REPOS])
    if len(repos) > NAMED_REPOS:
        name += f"+{len(repos) - NAMED_REPOS}more"
    return f"{name}-{os.getpid()}@{socket.gethostname()}"


def checkout_overrides(repos: list[str], path: str | list[str] | None) -> dict[str, str]:
    """Repo -> checkout directory from ``--path`` values: ``REPO=DIR`` for any worker
    (one per repo), or a plain ``DIR`` for a worker of one repo."""
    values = [path] if isinstance(path, str) else list(path or [])
    out: dict[str, str] = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if sep and name in repos:
            key, directory = name, rest
        elif len(repos) == 1:
            key, directory = repos[0], v  # a plain DIR (which may itself hold '=')
        elif sep:
            raise UsageError(f"--path {v}: {name!r} is not a repo this worker serves",
                             hint=f"serve it with --repo {name}, or name one of: "
                             + ", ".join(repos))
        else:
            raise UsageError(f"--path {v}: a plain DIR applies to a worker of one repo",
                             hint="say whose checkout it is: --path REPO=DIR")
        if not directory:
            raise UsageError(f"--path {v}: no directory after '='", hint="--path REPO=DIR")
        if key in out:
            raise UsageError(f"--path given twice for repo {key}", hint="give each repo one DIR")
        out[key] = directory
    return out


def build_worker(
    file: Path,
    repo: str | list[str],
    *,
    path: str | list[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    preflight: bool = True,
) -> WorkController:
    """A ready-to-start Celery worker (``.start()`` blocks until shutdown).

    With ``preflight`` (the default; off only to inspect the configuration) it
    first checks that Redis answers and raises ``RedisUnreachable`` if not.
    """
    settings = get_settings()
    repos = _served_repos(settings, repo, concurrency)
    overrides = checkout_overrides(repos, path)
    catalog = CatalogStore(file).load()
    checkouts, slots = _checkouts(file, catalog, repos, overrides, concurrency)
    if preflight:
        _preflight(settings, file)
    longest_todo, longest_sweep = limits_from_catalog(catalog)
    app = create_app(settings, longest_todo=longest_todo, longest_sweep=longest_sweep)
    rt = get_runtime()
    rt.dispatcher = dispatcher_for(rt, app=app)
    app.coord_runtime = rt
    hostname = worker_hostname(repos[0] if len(repos) == 1 else repos)
    if len(repos) == 1:
        register_worker(WorkerInfo(repo=repos[0], path=checkouts[repos[0]], name=hostname))
    else:
        register_worker(WorkerInfo(paths=checkouts, name=hostname))
    worker_class = _with_companions(app.Worker, rt, settings, hostname, repos,
                                    notify=catalog.notify if preflight else None)
    return worker_class(
        hostname=hostname,
        queues=[*(rt.keys.repo_queue(r) for r in repos), rt.keys.control_queue],
        pool="threads",
        # Every repo's todos at once (each repo's lease keeps it to its concurrency).
        # A thread takes a message only when free (prefetch 1), so a one-repo worker
        # holds no message waiting for one of its repo's slots: a spare thread would
        # only take one to wait in the repo's line (a wake-up and a second start per
        # todo, ~15 Redis commands). The trade-off: when all its threads wait for a
        # shared resource, the repo's todos that need none wait in the queue. Serving
        # several repos, one thread more lets a repo's todo start while another
        # repo's todo waits for a slot or a shared resource.
        concurrency=slots if len(repos) == 1 else slots + 1,
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
        optimization="fair",
    )


def _served_repos(settings: Settings, repo: str | list[str], concurrency: int | None
                  ) -> list[str]:
    """The repos the worker serves, each once; refused when it cannot serve them (an
    embedded Redis, no repo, ``--concurrency`` for several)."""
    if settings.embedded:
        raise UsageError(
            "coord worker needs a Redis shared with the CLI",
            hint="set COORD_REDIS_URL=redis://HOST:6379/0 (embedded sweeps run their own workers)",
        )
    repos = [repo] if isinstance(repo, str) else list(dict.fromkeys(repo))
    if not repos:
        raise UsageError("coord worker needs a repo", hint="--repo NAME (repeat for several)")
    if len(repos) > 1 and concurrency:
        raise UsageError("--concurrency applies to a worker of one repo",
                         hint="set each repo's concurrency in the catalog, or run one worker "
                         "per repo")
    return repos


def _checkouts(file: Path, catalog: Catalog, repos: list[str], overrides: dict[str, str],
               concurrency: int | None) -> tuple[dict[str, str], int]:
    """Each repo's checkout (``--path`` first, else the catalog's), which must exist, and
    the slots the worker's pool needs for all of them."""
    base = Path(file).resolve().parent
    checkouts: dict[str, str] = {}
    slots = 0
    for name in repos:
        spec = catalog.repo(name)
        if spec is None:
            known = ", ".join(r.name for r in catalog.repos) or "none"
            raise NotFoundError(f"unknown repo {name!r} in {file} (known: {known})")
        given = overrides.get(name)
        checkout = checkout_path(given, Path.cwd()) if given else spec.checkout(base)
        if not checkout.is_dir():
            raise UsageError(
                f"checkout {checkout} of repo {name} does not exist",
                hint="clone the repo there, or pass --path DIR"
                + ("" if len(repos) == 1 else f" as --path {name}=DIR"),
            )
        checkouts[name] = str(checkout.resolve())
        slots += concurrency or spec.concurrency
    if slots < 1:
        raise UsageError("--concurrency must be at least 1")
    return checkouts, slots


def _preflight(settings: Settings, file: Path) -> None:
    """Bad input first (exit 2, above); then fail fast (exit 1, the problem named)
    instead of Celery's retry-forever at start. Once started, the worker reconnects
    forever, as it should."""
    check_redis(settings)
    # Every command, key and channel a worker needs, tried once: a user missing one
    # is refused now, the permission named, not killed later inside Celery's loop.
    check_permissions(settings, "worker")
    # Not another catalog's namespace (its todos would run in our checkouts).
    get_runtime().claim(file)


def _with_companions(base: type, rt: Runtime, settings: Settings, hostname: str,
                     repos: list[str], notify: Sequence[Any] | None) -> type:
    """Celery's worker class with the threads that live beside the worker's pool: the
    supervisor (sweeps keep moving while any worker lives), the notifier (webhooks) and
    the liveness beat, started when the worker is ready and stopped when it leaves.
    ``notify``: this catalog's webhooks, published for every worker; delivered by
    whichever worker holds the outbox (a thread in each, one of them at a time)."""
    supervisor = SupervisorThread(rt)
    if notify:
        publish(rt, notify)
    notifier = NotifierThread(rt)
    beat: list[WorkerBeat] = []

    @signals.worker_ready.connect(weak=False)
    def _start_supervisor(**_: object) -> None:
        if settings.supervise:  # (not under a per-repo ACL user: see coord acl)
            supervisor.start()
        beat.append(start_beat(rt, hostname, repos))
        notifier.start()

    @signals.worker_shutting_down.connect(weak=False)
    def _stop_supervisor(**_: object) -> None:
        # In Celery's signal handler: the beat only says "stopping" (no Redis call
        # here); the record is removed when the worker is done (``start`` below).
        try:
            for b in beat:
                b.stopping()
        finally:
            supervisor.stop()
            notifier.halt()  # no Redis call in a signal handler: released at the end

    class Worker(base):  # type: ignore[misc]
        def start(self) -> None:
            try:
                super().start()
            finally:
                # Done (warm or cold): leave `coord workers` now, not after three
                # missed beats. Whatever happens above, the record goes.
                supervisor.stop()
                notifier.stop()
                for b in beat:
                    b.stop(leave=True)

    return Worker
