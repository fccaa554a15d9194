"""`coord worker` and `coord flower`."""

from __future__ import annotations

import os
import sys

import click

from coordination.errors import UsageError

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--repo", required=True, help="Repo whose queue this worker serves.")
@click.option("--path", "path", default=None, help="Checkout directory (default: the catalog's path).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Todos run at once by this worker (default: the repo's concurrency).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.pass_obj
def worker(obj: object, repo: str, path: str | None, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker for one repo (needs COORD_REDIS_URL).

    \b
    Example:
      COORD_REDIS_URL=redis://localhost:6379/0 coord worker --repo api --path ~/src/api
    """
    from workers.worker import build_worker

    w = build_worker(obj.file, repo, path=path, concurrency=concurrency, loglevel=loglevel)  # type: ignore[attr-defined]
    w.start()
    sys.exit(w.exitcode or 0)


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind; off localhost, COORD_FLOWER_AUTH is required.")
def flower(port: int, address: str) -> None:
    """Run Flower (Celery monitoring) on coord's app.

    Basic auth comes from COORD_FLOWER_AUTH=user:password and is required
    unless Flower binds to localhost.

    \b
    Example:
      COORD_FLOWER_AUTH=admin:s3cret coord flower --address 0.0.0.0 --port 5555
    """
    from coordination.settings import get_settings

    settings = get_settings()
    if settings.embedded:
        raise UsageError("coord flower needs COORD_REDIS_URL (embedded sweeps have no broker to watch)")
    args = flower_argv(port=port, address=address, auth=settings.flower_auth)
    os.execvp(sys.executable, args)


def flower_argv(*, port: int, address: str, auth: str | None) -> list[str]:
    """The `celery flower` command line for coord's app; refuses open, unauthenticated binds."""
    if address not in LOCAL_ADDRESSES and not auth:
        raise UsageError(
            f"refusing to serve Flower on {address} without authentication",
            hint="set COORD_FLOWER_AUTH=user:password, or bind --address 127.0.0.1",
        )
    if auth and ":" not in auth:
        raise UsageError("COORD_FLOWER_AUTH must look like user:password")
    args = [sys.executable, "-m", "celery", "-A", "workers.flower_app", "flower",
            f"--port={port}", f"--address={address}"]
    if auth:
        args.append(f"--basic-auth={auth}")
    return args
