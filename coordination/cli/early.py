"""The `coord` console script: a worker of several repos starts before the CLI loads
(:mod:`workers.starter`: its parent's image stays a bare interpreter's), then the CLI.
(`python -m coordination.cli.main` does the same at the top of that module.)"""

from __future__ import annotations

import sys


def _rerun(argv: list[str]) -> None:
    from coordination.cli.main import main

    main(argv)


def main() -> None:
    from workers.starter import start  # stdlib only

    start(sys.argv[1:], _rerun)
    from coordination.cli.main import main as cli_main

    cli_main()
