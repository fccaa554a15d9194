"""`coord mcp`: coord's catalog and sweeps as MCP tools, on stdio or streamable HTTP.

``operations`` holds what each tool does (the same library calls and JSON
documents as the CLI's ``--json``, scoped to the served repos) and imports no
MCP; ``tools`` declares the tools by toolset, with output schemas and
annotations; ``toolkit`` is the SDK's server made exact (unknown arguments
refused, strict schemas); ``server`` holds the click command; ``stdio`` is the
SDK's stdio transport with a JSON-RPC error for every request it cannot read;
``http`` the SDK's streamable HTTP app behind a Host/Origin check and a bearer
token. Nothing in coord imports this package: the CLI names the command by
string, so `coord todo list` never loads the SDK.
"""
