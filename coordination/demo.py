"""Prepare the embedded demo: a fresh copy of the example catalog and its checkouts.

`make demo` calls this, then sweeps PLAN-001 on the copy, so the tracked
ecosystem.yaml is never modified and the demo can run any number of times.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from coordination.catalog.file.store import CatalogStore


def prepare(target: Path, source: Path = Path("ecosystem.yaml")) -> Path:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    dest = target / "ecosystem.yaml"
    shutil.copyfile(source, dest)
    catalog = CatalogStore(dest).load()
    for repo in catalog.repos:
        repo.checkout(target).mkdir(parents=True, exist_ok=True)
    return dest


if __name__ == "__main__":
    out = prepare(Path(sys.argv[1] if len(sys.argv) > 1 else ".coord-demo"))
    print(f"demo catalog: {out} (checkouts created beside it)")
