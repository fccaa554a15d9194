"""The MCP server: coord's tools (:mod:`.tools`) on a :class:`.toolkit.CoordServer`,
served on stdio or, with ``--http PORT``, on streamable HTTP (:mod:`.http`).

Each tool's result is one text block holding exactly the JSON document the matching
CLI command prints with ``--json``, and the same as structured content (a list as
``{"items": [...]}``). A coord error, and an argument the tool does not take, is a
tool error (``isError``) whose text is coord's message and hint, with ``{"error",
"hint", "exit_code", "type"}`` as structured content.

``--toolsets`` picks the groups of tools served (default: catalog, sweeps);
``--read-only`` serves only the tools that neither write the catalog nor run anything.
A tool left out is not listed; calling it says why.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import anyio
import click

from coordination.cli.context import Context
from coordination.errors import UsageError
from coordination.mcp_server.http import require_token, serve_http
from coordination.mcp_server.operations import Operations
from coordination.mcp_server.stdio import serve_stdio
from coordination.mcp_server.toolkit import CoordServer
from coordination.mcp_server.tools import DEFAULT_TOOLSETS, TOOLSETS, build
from coordination.processes import not_dumpable
from coordination.settings import get_settings


def _version() -> str:
    try:
        return version("coord")
    except PackageNotFoundError:  # a source tree that was never installed
        return ""


def parse_toolsets(text: str) -> set[str]:
    """``catalog,sweeps`` (or ``all``) as a set; an unknown name is a usage error."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in names:
        return set(TOOLSETS)
    unknown = sorted(names - set(TOOLSETS))
    if unknown or not names:
        raise UsageError(f"--toolsets: unknown toolset {', '.join(unknown) or '(none given)'}",
                         hint=f"toolsets: {', '.join(TOOLSETS)}, or all")
    return names


def build_server(ops: Operations, *, read_only: bool = False,
                 toolsets: set[str] | None = None) -> CoordServer:
    """A server offering coord's tools of ``toolsets`` (default :data:`DEFAULT_TOOLSETS`)
    over ``ops`` (only the reading ones if ``read_only``)."""
    scope = f" Serves only repos {', '.join(sorted(ops.repos))}." if ops.repos else ""
    server = CoordServer(
        name="coord",
        instructions=("coord coordinates work across repositories: issues, todos, plans, "
                      "dependencies, and sweeps that run a plan's todos on their repos' "
                      f"workers. Results are coord's --json documents.{scope}"),
        version=_version(),
        log_level="WARNING",
    )
    build(server, ops, set(DEFAULT_TOOLSETS) if toolsets is None else toolsets, read_only)
    if not server.defs:
        raise UsageError("no tool to serve: every tool of those toolsets writes or runs, "
                         "and --read-only serves none of them",
                         hint="add a toolset with tools that read, e.g. --toolsets catalog")
    return server


@click.command("mcp")
@click.option("--toolsets", default=",".join(DEFAULT_TOOLSETS), show_default=True,
              metavar="LIST",
              help=f"Tool groups to serve, comma-separated: {', '.join(TOOLSETS)}, or all.")
@click.option("--read-only", is_flag=True,
              help="Offer only tools that read: none that writes the catalog or runs anything.")
@click.option("--repo", "repos", multiple=True, metavar="R",
              help="Serve only this repo (repeat for more): lists filtered, others refused.")
@click.option("--http", "port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio; every "
                   "request needs Authorization: Bearer $COORD_MCP_TOKEN.")
@click.pass_obj
def mcp(obj: Context, toolsets: str, read_only: bool, repos: tuple[str, ...],
        port: int | None) -> None:
    """Serve coord's tools to an agent over MCP, on stdio (stdout is the protocol) or HTTP.

    \b
    Examples:
      coord --file ecosystem.yaml mcp
      coord mcp --read-only --repo api --repo web
      coord mcp --toolsets catalog,sweeps,history
      COORD_MCP_TOKEN=$(openssl rand -hex 32) coord mcp --http 8765
    """
    not_dumpable()  # it holds the MCP token and may run todos embedded
    chosen = parse_toolsets(toolsets)
    token = ""
    if port is not None:  # checked before anything else: no token, no server
        secret = get_settings().mcp_token
        token = require_token(secret.get_secret_value() if secret is not None else "")
    ops = Operations(Path(obj.file), repos)
    ops.check_repos()  # a bad --repo or catalog: exit 2 before serving
    server = build_server(ops, read_only=read_only, toolsets=chosen)
    if port is None:
        # Not ``.run("stdio")``: coord's stdin answers the requests the SDK would drop.
        anyio.run(serve_stdio, server)
        return
    anyio.run(functools.partial(
        serve_http, server, port=port, token=token,
        ready=lambda url: click.echo(f"coord mcp: serving {url}", err=True)))
