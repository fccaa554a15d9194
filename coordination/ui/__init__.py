"""`coord ui`: a read-only web view of plans, sweeps, changes and repos.

The top layer beside the CLI: only ``coordination.cli`` imports it, and only
inside the commands that serve it (starlette and uvicorn are never loaded by
other commands). It reads what the CLI reads (the catalog, sweep records,
checkpoints, the event ledger, worker liveness, change records) and writes and runs
nothing.

    layout.py   a DAG laid out as levels (columns) x repos (lanes), in Python
    documents.py the JSON the pages use; the CLI's --json documents where one exists
    changes.py  a change plan's documents (`coord change status --json`'s), and its one line
    app.py      the Starlette app: pages, JSON, server-sent events, Host check, basic auth
    feeds.py    the event streams: one reader thread fanning out to every open stream
    server.py   bind checks and running it (foreground, or a thread for --ui)
    static/     one HTML page, its script and stylesheet (no CDN)
"""

#: The web view's port unless --port / --ui-port says otherwise (here, so that the CLI
#: can name it without loading the server).
DEFAULT_PORT = 8765
