"""`coord forge webhook`: forge events in (starlette and uvicorn load only here)."""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.options import listen_options
from coordination.cli.render import err_console
from coordination.processes import not_dumpable
from coordination.runtime.context import get_runtime
from coordination.ui.hooks import GLOBAL, Hooks
from coordination.ui.server import serve, url


@click.group()
def forge() -> None:
    """Forges (GitHub, GitLab, Gitea/Forgejo): their events in (webhook).

    \b
    Example:
      COORD_FORGE_WEBHOOK_SECRET=... coord forge webhook --port 8788
    """


@forge.command()
@listen_options(click.IntRange(1, 65535), 8788, "TCP port the webhook endpoint listens on.",
                "Interface to bind (a forge must reach it: a proxy in front, or 0.0.0.0).")
@click.pass_obj
def webhook(obj: Context, port: int, address: str) -> None:
    """Take a forge's webhook deliveries at POST /hooks/github, /hooks/gitlab and
    /hooks/gitea (coord ui serves the same path beside its pages).

    A delivery counts only when its signature holds under a secret set here:
    COORD_FORGE_WEBHOOK_SECRET, or the variable a repo's forge: webhook_secret_env
    names (X-Hub-Signature-256, X-Gitlab-Token, X-Gitea-Signature); a missing or bad
    one is refused with 401 and changes nothing. A pull_request, review or check event
    of a change's pull request updates what coord change status shows of it without
    asking the forge; a push event goes to coord's push hook point; an issues event
    of a forge issue linked with coord issue link brings its title and state into the
    catalog.

    \b
    Examples:
      COORD_FORGE_WEBHOOK_SECRET=s3cret coord forge webhook
      coord forge webhook --address 0.0.0.0 --port 9000
    """
    hooks = Hooks(get_runtime(obj.file), obj.file)
    if not hooks.env.get(GLOBAL):
        err_console().print(f"[yellow]note:[/yellow] {GLOBAL} is not set: only deliveries "
                            "signed with a repo's own webhook_secret_env's secret are taken")
    err_console().print(f"coord forge webhook on {url(address, port).rstrip('/')}/hooks/<kind> "
                        "(Ctrl-C stops it)")
    not_dumpable()  # it holds the webhook secrets and the key: no todo reads its memory
    serve(hooks.app(), address, port)
