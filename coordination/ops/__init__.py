"""Operating coord: what a team's monitoring reads (``metrics``: the Prometheus
exposition) and what is wrong with a deployment (``doctor``: checks, each finding
with its fix). Above the sweeps and the runtime; only the CLI and the web view use it.
"""
