"""`coord ui`: the read-only web view (starlette and uvicorn load only here)."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import err_console
from coordination.runtime.context import get_runtime
from coordination.settings import get_settings
from coordination.ui.app import create_app
from coordination.ui.server import DEFAULT_PORT, check_bind, serve, url


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind; off localhost, COORD_UI_AUTH is required.")
@click.pass_obj
def ui(obj: Context, port: int, address: str) -> None:
    """Serve a live web view of sweeps, plans and repos (read-only).

    Pages: / (recent sweeps, repos with live workers, plans), /sweeps/ID (the
    sweep's DAG, live), /plans/ID (a plan's DAG and milestones). JSON: /api/...
    (the same documents as --json). Basic auth comes from COORD_UI_AUTH=user:password
    and is required unless the view binds to localhost.

    \b
    Examples:
      COORD_REDIS_URL=redis://localhost:6379/0 coord ui
      COORD_UI_AUTH=admin:s3cret coord ui --address 0.0.0.0 --port 8765
    """
    settings = get_settings()
    check_bind(address, settings.ui_auth)
    app = create_app(get_runtime(obj.file), obj.file, auth=settings.ui_auth)
    if settings.embedded:
        err_console().print("[yellow]note:[/yellow] COORD_REDIS_URL is unset: it shows the "
                            "embedded sweeps that ended (kept beside the catalog); watch one "
                            "live with `coord plan sweep PLAN --wait --ui`")
    err_console().print(f"coord ui on {url(address, port)} (Ctrl-C stops it)")
    serve(app, address, port)
