"""The fleet floor, beside the catalog: the checkouts on disk and what they say.

``discovery`` finds the git checkouts under some directories and reads their branch,
remote and manifests; ``manifests`` reads what each ecosystem's manifests provide and
require; ``drift`` turns that into a catalog's repos and dependencies and sets it
against a catalog (``coord init``, ``coord init --check``). It reads the catalog's
models and never edits: the one edit that takes its result is the catalog's
``FleetEdits.apply``.
"""
