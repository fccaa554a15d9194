"""`coord mcp`: coord's catalog and sweeps as MCP tools, on stdio.

``operations`` holds what each tool does (the same library calls and JSON
documents as the CLI's ``--json``, scoped to the served repos) and imports no
MCP; ``server`` registers them with the official MCP SDK and holds the click
command; ``stdio`` is the SDK's stdio transport with a JSON-RPC error for every
request it cannot read. Nothing in coord imports this package: the CLI names the
command by string, so `coord todo list` never loads the SDK.
"""
