"""Where coord's Redis is and whether it answers: the redis-py clients and the Lua
script loader (``client``), Sentinel (``sentinel``), the embedded mode's own
redis-server and its process (``embedded_server``), the checks before a worker starts
(``preflight``), a catalog's claim on its namespace (``claim``) and what `coord doctor`
reads of the server itself (``server_facts``).

Above the planner, below the runtime: the runtime's stores read and write through
these clients; nothing here reads or writes the runtime's state.
"""
