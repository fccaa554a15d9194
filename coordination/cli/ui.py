"""`coord ui`: the web view (starlette and uvicorn load only here)."""

from __future__ import annotations

import click
from rich.markup import escape

from coordination.cli.context import Context
from coordination.cli.options import listen_options
from coordination.cli.render import err_console
from coordination.processes import not_dumpable
from coordination.runtime.context import get_runtime
from coordination.settings import get_settings
from coordination.ui.app import create_app, local_hosts
from coordination.ui.server import (
    DEFAULT_PORT,
    LOCAL_ADDRESSES,
    check_bind,
    load_users,
    serve,
    url,
)


@click.command()
@listen_options(click.IntRange(1, 65535), DEFAULT_PORT, "TCP port the web view listens on.",
                "Interface to bind; off localhost, COORD_UI_AUTH is required.")
@click.pass_obj
def ui(obj: Context, port: int, address: str) -> None:
    """Serve a live web view of sweeps, plans, changes and repos.

    Pages: / (recent sweeps, repos with live workers, plans), /sweeps/ID (the
    sweep's DAG, live), /plans/ID (a plan's DAG and milestones), /changes (every
    change plan: its state, landable or not) and /changes/PLAN (per repo state,
    blockers, verify and gate verdicts, who approved, the landed or reverted SHAs:
    coord change status's document). JSON: /api/... (the same documents as --json).
    It reads, but for one thing: a signed-in user (COORD_UI_AUTH) approves or
    rejects a waiting gate. Basic auth comes from COORD_UI_AUTH=user:password and is
    required unless the view binds to localhost. Only requests whose Host names
    localhost, the bound address or a name in COORD_UI_HOSTS are answered (others get
    400: no other web site can read the view through DNS rebinding).

    \b
    Examples:
      COORD_REDIS_URL=redis://localhost:6379/0 coord ui
      COORD_UI_AUTH=admin:s3cret COORD_UI_HOSTS=coord.lan coord ui --address 0.0.0.0
    """
    not_dumpable()  # it holds the key (votes) and a password: no todo reads its memory
    settings = get_settings()
    users = load_users(settings.ui_users)
    check_bind(address, settings.ui_auth, users)
    hosts = [*local_hosts(address), *settings.ui_host_names]
    app = create_app(get_runtime(obj.file), obj.file, auth=settings.ui_auth, users=users,
                     hosts=hosts)
    if address not in LOCAL_ADDRESSES and not settings.ui_host_names:
        err_console().print("[yellow]note:[/yellow] only requests addressed to "
                            f"{escape(', '.join(hosts))} are answered; name this host in "
                            "COORD_UI_HOSTS (comma-separated) to reach it by name")
    if settings.embedded:
        err_console().print("[dim]COORD_REDIS_URL is unset: the catalog's embedded sweeps, "
                            "running and ended, from its own server[/dim]")
    err_console().print(f"coord ui on {url(address, port)} (Ctrl-C stops it)")
    serve(app, address, port)
