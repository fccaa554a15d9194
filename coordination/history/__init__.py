"""Reading the run history: `coord history search` (``search``) and `coord history
trends` (``trends``), and the documents the CLI, the MCP tools and the web view print.

Above the runtime, whose store (:mod:`coordination.runtime.history`) holds the runs in
Redis and hands them over; the arithmetic is :mod:`coordination.stats`'.
"""
