"""Arithmetic over recorded runs, pure: a history search's relevance ranking
(``relevance``: BM25 over SQLite FTS5 in memory) and how work flows (``flow``:
velocity, bottlenecks, recoveries).

Records are handed in (read by the runtime's history store) and figured here: no
Redis, no runtime, no file. Below the runtime, whose history store ranks its matches
and adds up its trends with these.
"""
