"""`coord worker --repo NAME [--repo NAME...]`: a Celery worker for repos' queues.

It consumes ``<ns>.repo.<NAME>`` of each repo and the control queue, runs todos
as shell commands in their repo's checkout, and runs a supervisor thread so
sweeps keep moving (lost todos re-sent, deadlines enforced) as long as any
worker lives. A worker process may serve several repos: its pool has room for each
repo's concurrency, and the repos' leases keep each repo to its own. A worker of
several repos forks one such process per usable core, at most one per repo
(:mod:`workers.process_group`; ``--processes`` says how many).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import platforms, signals
from celery.worker import WorkController

from coordination.catalog.models import Catalog, checkout_path
from coordination.catalog.file.store import CatalogStore
from coordination.connection.preflight import check_permissions, check_redis
from coordination.dispatch import dispatcher_for
from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime, get_runtime
from coordination.settings import Settings, get_settings
from coordination.sweeps.notices.notify import NotifierThread, publish
from coordination.sweeps.supervision import SupervisorThread
from coordination.trust.secrets import catalog_secret_names, hold_names
from workers.app import create_app, limits_from_catalog
from workers.embedded import default_processes, process_groups
from workers.execute import TodoUser, set_todo_user
from workers.liveness import WorkerBeat, start_beat
from workers.process_group import Group, ProcessGroup
from workers import starter
from workers.runner import WorkerInfo, leave_files
from workers.tasks import register_worker


#: Repos a worker's name spells out; past them it says how many more. The name is in
#: every checkpoint and event of its todos (``worker``), and a worker of 500 repos
#: named them all in each: 5 KB a checkpoint. `coord workers` lists every repo.
NAMED_REPOS = 3


def worker_hostname(repo: str | list[str], pid: int | None = None) -> str:
    """Unique per process (``pid``: this one's), so two workers of one repo on one host
    differ in Flower."""
    repos = [repo] if isinstance(repo, str) else list(repo)
    name = "+".join(repos[:NAMED_REPOS])
    if len(repos) > NAMED_REPOS:
        name += f"+{len(repos) - NAMED_REPOS}more"
    return f"{name}-{os.getpid() if pid is None else pid}@{socket.gethostname()}"


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


@dataclass
class Plan:
    """What a worker serves, read and checked once (in the process the user started,
    before any fork): its repos, their checkouts and concurrency, the catalog's limits
    and webhooks."""

    file: Path
    repos: list[str]
    checkouts: dict[str, str]
    concurrency: dict[str, int]
    longest_todo: float
    longest_sweep: float
    notify: Sequence[Any]

    def slots(self, repos: Sequence[str]) -> int:
        """Threads for a worker process of ``repos``: every repo's todos at once (each
        repo's lease keeps it to its concurrency), one more for several (see
        :func:`_make`)."""
        return sum(self.concurrency[r] for r in repos) + (1 if len(repos) > 1 else 0)


def plan_worker(file: Path, repo: str | list[str], *, path: str | list[str] | None = None,
                concurrency: int | None = None) -> Plan:
    """The worker's :class:`Plan`, or the usage error that refuses it (exit 2)."""
    settings = get_settings()
    repos = _served_repos(settings, repo, concurrency)
    overrides = checkout_overrides(repos, path)
    catalog = CatalogStore(file).load()
    # The variables the catalog names as secrets (forge tokens, App keys, webhook
    # secrets) never reach a todo: said once here, before any fork.
    hold_names(*catalog_secret_names(r.forge for r in catalog.repos))
    checkouts, per_repo = _checkouts(file, catalog, repos, overrides, concurrency)
    longest_todo, longest_sweep = limits_from_catalog(catalog)
    return Plan(Path(file), repos, checkouts, per_repo, longest_todo, longest_sweep,
                list(catalog.notify))


def build_worker(
    file: Path,
    repo: str | list[str],
    *,
    path: str | list[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    preflight: bool = True,
) -> WorkController:
    """A ready-to-start Celery worker of one process (``.start()`` blocks until shutdown).

    With ``preflight`` (the default; off only to inspect the configuration) it
    first checks that Redis answers and raises ``RedisUnreachable`` if not.
    """
    plan = plan_worker(file, repo, path=path, concurrency=concurrency)
    if preflight:
        _preflight(get_settings(), plan)
    return _make(plan, plan.repos, loglevel, notify=plan.notify if preflight else None)


def run_worker(file: Path, repos: list[str], *, path: str | list[str] | None = None,
               concurrency: int | None = None, processes: int | None = None,
               loglevel: str = "INFO", todo_user: str | None = None) -> int:
    """`coord worker`: serve ``repos`` until stopped; the exit code. Several repos are
    served by ``processes`` forked worker processes (None: one per usable core, at most
    one per repo; see :mod:`workers.process_group`), one repo by this process.
    ``todo_user``: the OS user its todos run as (this process must be root)."""
    if todo_user is not None:
        set_todo_user(todo_user_named(todo_user))
    if processes is not None and processes > 1 and len(dict.fromkeys(repos)) == 1:
        raise UsageError("--processes applies to a worker of several repos",
                         hint="a repo's todos run in one process: set its concurrency "
                         "(--concurrency N) instead")
    if processes is not None and processes > 1 and not sys.platform.startswith("linux"):
        raise UsageError("--processes needs Linux (a parent's death must take its worker "
                         "processes with it: PR_SET_PDEATHSIG)",
                         hint="run one `coord worker` per share of the repos instead")
    plan = plan_worker(file, repos, path=path, concurrency=concurrency)
    if starter.member is not None:  # started again by the parent, after a death
        return serve_share(plan, starter.member.index, starter.member.repos, loglevel,
                           starter.member.group, starter.member.ready)
    wanted = default_processes() if processes is None else processes
    groups = process_groups(plan.concurrency, wanted)
    if len(groups) <= 1:
        if starter.handover is not None:  # the process started runs it (workers/starter.py)
            starter.report({"single": True})
        w = build_worker(file, repos, path=path, concurrency=concurrency, loglevel=loglevel)
        w.start()
        return int(w.exitcode or 0)
    _preflight(get_settings(), plan)
    handover = starter.handover
    # (a starter's: named for the process started, whose worker it is)
    name = worker_hostname(plan.repos, None if handover is None else handover.parent)

    def serve(group: Group, ready: int) -> int:
        # (in the forked process: its own app, runtime wiring and liveness beat)
        return serve_share(plan, group.index, group.repos, loglevel, name, ready)

    # Its connections are the forked processes' to make: this one talks to no Redis now.
    get_runtime().redis.connection_pool.disconnect()
    preload_for_forks()
    shares = [sorted(g) for g in groups]
    if handover is None:
        return ProcessGroup(name, shares, serve, loglevel=loglevel).run()
    # A starter: the processes are forked for the parent, told who they are; it ends.
    pids = ProcessGroup(name, shares, serve, loglevel=loglevel, ready=(-1, handover.ready),
                        parent=handover.parent, not_theirs=(handover.report,)).fork_for()
    starter.report({"name": name, "shares": shares, "pids": pids, "loglevel": loglevel})
    raise AssertionError("unreachable")  # (report ends the starter)


def serve_share(plan: Plan, index: int, repos: list[str], loglevel: str, group: str,
                ready: int) -> int:
    """A worker process of a worker of several repos: serve ``repos`` (share ``index``;
    the first supervises sweeps and sends webhooks) until stopped; its exit code."""
    w = _make(plan, repos, loglevel, notify=plan.notify if index == 0 else None,
              supervise=index == 0, group=group, ready=ready)
    w.start()
    return int(w.exitcode or 0)


#: What a worker process imports as its Celery worker starts (its consumer, pool, broker
#: transport, result backend, remote control, events), imported by the parent of a
#: worker of several repos before it forks them: shared by every process, not loaded
#: again by each (81 modules, about 7 MB of each process's own memory on 3.11).
FORKED_IMPORTS = (
    "celery.apps.worker", "celery.worker.components", "celery.worker.consumer",
    "celery.worker.control", "celery.worker.strategy", "celery.worker.autoscale",
    "celery.concurrency.thread", "celery.app.amqp", "celery.app.control",
    "celery.app.events", "celery.app.log", "celery.app.routes", "celery.app.trace",
    "celery.loaders.app", "celery.fixups.django", "celery.backends.redis",
    "celery.events.dispatcher", "celery.events.receiver", "kombu.transport.redis",
    "kombu.pidbox", "kombu.mixins", "billiard.pool", "psutil", "workers.broker",
)


def preload_for_forks() -> list[str]:
    """:data:`FORKED_IMPORTS` imported in this process (the parent, before it forks its
    worker processes); the names that could not be (a Celery without one of them: each
    process imports what it needs itself, as before)."""
    missing = []
    for name in FORKED_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def todo_user_named(name: str) -> TodoUser:
    """``--todo-user NAME`` checked: a user of this machine other than root, and this
    process root (only root runs a command as another user); a UsageError otherwise."""
    if not hasattr(os, "geteuid") or not sys.platform.startswith("linux"):
        raise UsageError("--todo-user needs Linux", hint="run the worker as the user the "
                         "todos may run as instead")
    if os.geteuid() != 0:
        raise UsageError(f"--todo-user {name}: only a worker running as root can run todos "
                         "as another user",
                         hint="run coord worker as root with --todo-user, or run it as the "
                         "user its todos may run as (its todos cannot read a non-root "
                         "worker's environment: it is not dumpable)")
    try:
        return TodoUser.named(name)
    except ValueError as exc:
        raise UsageError(f"--todo-user {name}: {exc}",
                         hint="create the user (useradd --system NAME), give it read and "
                         "write access to each checkout, and name it here") from None


def _make(plan: Plan, repos: list[str], loglevel: str, *, notify: Sequence[Any] | None,
          supervise: bool = True, group: str = "", ready: int | None = None
          ) -> WorkController:
    """The Celery worker of this process for ``repos`` (all of the plan's, or a forked
    process's share): its app, its runtime wired to it, its companions."""
    settings = get_settings()
    app = create_app(settings, longest_todo=plan.longest_todo, longest_sweep=plan.longest_sweep)
    rt = get_runtime()
    rt.dispatcher = dispatcher_for(rt, app=app)
    # (its own catalog, never one named in Redis: a push's forge and remote come from it)
    rt.worker_catalog = plan.file.absolute()
    app.coord_runtime = rt
    hostname = worker_hostname(repos[0] if len(repos) == 1 else repos)
    if len(repos) == 1:
        register_worker(WorkerInfo(repo=repos[0], path=plan.checkouts[repos[0]], name=hostname))
    else:
        register_worker(WorkerInfo(paths={r: plan.checkouts[r] for r in repos}, name=hostname))
    worker_class = _with_companions(app.Worker, rt, settings, hostname, repos, notify=notify,
                                    supervise=supervise, group=group, ready=ready)
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
        concurrency=plan.slots(repos),
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
               concurrency: int | None) -> tuple[dict[str, str], dict[str, int]]:
    """Each repo's checkout (``--path`` first, else the catalog's), which must exist, and
    each repo's concurrency (``--concurrency`` for a worker of one repo)."""
    base = Path(file).resolve().parent
    checkouts: dict[str, str] = {}
    per_repo: dict[str, int] = {}
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
        per_repo[name] = concurrency or spec.concurrency
    if sum(per_repo.values()) < 1:
        raise UsageError("--concurrency must be at least 1")
    return checkouts, per_repo


def _preflight(settings: Settings, plan: Plan) -> None:
    """Bad input first (exit 2, above); then fail fast (exit 1, the problem named)
    instead of Celery's retry-forever at start. Once started, the worker reconnects
    forever, as it should."""
    check_redis(settings)
    # Every command, key and channel a worker needs, tried once: a user missing one
    # is refused now, the permission named, not killed later inside Celery's loop.
    check_permissions(settings, "worker")
    # Not another catalog's namespace (its todos would run in our checkouts).
    get_runtime().claim(plan.file)


def once(handler: Callable[..., None]) -> Callable[..., None]:
    """``handler`` run by its first call only. Celery calls its shutdown handlers from
    the signal handler of SIGTERM and SIGINT: a second signal landing while the first
    call is inside ``Event.set`` (which holds the event's lock) ran the handler again
    in the same thread, which waited on that lock forever; the worker said "Warm
    shutdown" and never exited. A later call returns at once; the first one stops
    everything."""
    called = False

    def first(*args: Any, **kwargs: Any) -> None:
        nonlocal called
        if called:
            return
        called = True
        handler(*args, **kwargs)

    return first


def _with_companions(base: type, rt: Runtime, settings: Settings, hostname: str,
                     repos: list[str], notify: Sequence[Any] | None, *, supervise: bool = True,
                     group: str = "", ready: int | None = None) -> type:
    """Celery's worker class with the threads that live beside the worker's pool: the
    supervisor (sweeps keep moving while any worker lives), the notifier (webhooks) and
    the liveness beat, started when the worker is ready and stopped when it leaves.
    ``notify``: this catalog's webhooks, published for every worker; delivered by
    whichever worker holds the outbox (a thread in each, one of them at a time).

    A process of a worker of several repos (``group``: the name of the `coord worker`
    process that forked it): the supervisor and the notifier run only where
    ``supervise`` (one per worker, as before), its beat names the group, it says it is
    ready on the ``ready`` pipe (the parent says "ready." once all are), and SIGHUP is
    its parent's (Celery's restart would run the parent's command line in it)."""
    supervisor = SupervisorThread(rt)
    if notify:
        publish(rt, notify)
    notifier = NotifierThread(rt)
    beat: list[WorkerBeat] = []
    member = (group, os.getppid()) if group else None

    @signals.worker_ready.connect(weak=False)
    def _start_supervisor(**_: object) -> None:
        if supervise and settings.supervise:  # (not under a per-repo ACL user: coord acl)
            supervisor.start()
        beat.append(start_beat(rt, hostname, repos, group=member))
        if supervise:
            notifier.start()
        if ready is not None:
            os.write(ready, b"%d\n" % os.getpid())  # after its first beat: listed now

    @signals.worker_shutting_down.connect(weak=False)
    @once
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
                leave_files()  # (a forked process ends without exit handlers)

        def on_consumer_ready(self, consumer: Any) -> None:
            if ready is None:
                super().on_consumer_ready(consumer)
            else:  # its parent says "ready." for the worker, once every process is
                signals.worker_ready.send(sender=consumer)

        def install_platform_tweaks(self, worker: Any) -> None:
            super().install_platform_tweaks(worker)
            if group:
                platforms.signals.ignore("SIGHUP")

    return Worker
