"""Only the runtime touches Redis: above it, state is reached through the runtime's
stores (checkpoints, events, transitions, leases, workers, breakers), which own every
key and field name. A raw ``rt.redis`` call elsewhere skips their checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
#: ``<a runtime>.redis`` as the code above the runtime would spell it.
RAW = re.compile(r"\b(?:rt|runtime|self\.rt|svc\.rt|self\.runtime)\.redis\b")


def offenders() -> list[str]:
    out = []
    for pkg in ("coordination", "workers"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("coordination/runtime/"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if RAW.search(line):
                    out.append(f"{rel}:{n}: {line.strip()}")
    return out


def test_no_raw_redis_above_the_runtime() -> None:
    found = offenders()
    assert not found, "use (or add) a method of a runtime store instead:\n" + "\n".join(found)


def test_the_check_sees_a_raw_call(tmp_path: Path) -> None:
    assert RAW.search("    x = rt.redis.hget(key, 'f')")
    assert RAW.search("self.rt.redis.smembers(k)")
    assert not RAW.search("import redis")
