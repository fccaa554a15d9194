"""Only the runtime touches Redis: above it, state is reached through the runtime's
stores (checkpoints, events, transitions, leases, workers, breakers), which own every
key and field name. A raw ``rt.redis`` call elsewhere skips their checks.

The keys are the runtime's too: outside ``coordination/runtime/`` (and ``keys.py``), code
names only what is not Redis state (the namespace, the broker's queue names), and
``connection/`` the few keys it needs before a runtime exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from coordination.keys import Keys

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


#: What any module may name of :class:`Keys`: no Redis state, only the namespace and
#: the broker's queue names (a message's address: dispatch sends to it, a worker
#: consumes it, Celery's transport is told its prefix).
ANYWHERE = frozenset({"namespace", "repo_queue", "control_queue", "celery_prefix"})
#: What ``connection/`` touches before a runtime exists: the namespace's claim (refused
#: before anything is read), and a starting worker's ACL probe keys and Celery's
#: remote-control channel (preflight).
BEFORE_A_RUNTIME = frozenset({"catalog_claim", "acl_probe", "pidbox_channel"})


def _names_keys(node: ast.expr) -> bool:
    """``keys``, ``<anything>.keys`` or ``Keys(...)``: an expression that is a Keys."""
    if isinstance(node, ast.Name):
        return node.id == "keys"
    if isinstance(node, ast.Attribute):
        return node.attr == "keys"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "Keys")


def keys_named(source: str) -> list[tuple[int, str]]:
    """(line, attribute) of every ``<a Keys>.<attribute>`` in ``source``."""
    return sorted((node.lineno, node.attr) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Attribute) and _names_keys(node.value)
                  and not node.attr.startswith("_") and hasattr(Keys, node.attr))


def key_offenders() -> list[str]:
    out = []
    for pkg in ("coordination", "workers"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("coordination/runtime/") or rel == "coordination/keys.py":
                continue
            allowed = ANYWHERE | (BEFORE_A_RUNTIME if rel.startswith("coordination/connection/")
                                  else frozenset())
            out += [f"{rel}:{n}: Keys.{attr}" for n, attr in keys_named(path.read_text())
                    if attr not in allowed]
    return out


def test_only_the_runtime_names_redis_state_keys() -> None:
    found = key_offenders()
    assert not found, ("a Redis key outside coordination/runtime/: use (or add) a method of "
                       "a runtime store instead:\n" + "\n".join(found))


def test_the_key_check_sees_a_key_and_its_lists_are_keys() -> None:
    assert keys_named("x = rt.keys.sweep(s)\ny = Keys(ns).dead_letters\nz = keys.repo_queue(r)") == [
        (1, "sweep"), (2, "dead_letters"), (3, "repo_queue")]
    assert keys_named("rt.events.emit(e)\nd.keys()") == []
    assert all(hasattr(Keys, name) for name in ANYWHERE | BEFORE_A_RUNTIME)
