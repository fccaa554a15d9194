"""The `coord` console script: a worker of several repos starts before the CLI loads
(:mod:`workers.starter`: its parent's image stays a bare interpreter's), then the CLI.
(`python -m coordination.cli.main` does the same at the top of that module.)"""

from __future__ import annotations

import sys

from workers.starter import start


def _rerun(argv: list[str]) -> None:
    # lazy: in a process started again after a death, by a parent that never loaded it
    from coordination.cli.main import main

    main(argv)


def main() -> None:
    start(sys.argv[1:], _rerun)
    # lazy: after the starter's fork (workers/starter.py): its parent never loads the CLI
    from coordination.cli.main import main as cli_main

    cli_main()
