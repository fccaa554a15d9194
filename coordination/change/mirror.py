"""A change's state follows the catalog, not the Redis in use.

A change landed in embedded mode (the catalog's own server) and read with
``COORD_REDIS_URL`` set (or the other way round) read ``drafted / never landed`` in
0.4, and ``change revert`` refused it. So whenever a landing or revert ends, the
change's record is kept beside the catalog too
(``.<catalog file>.coord.changes/<PLAN>.json``: every field of its hash, and which
Redis it came from); ``change status``, ``land`` and ``revert`` carry it into the Redis
in use when it ended later than what that Redis has (:meth:`ChangeStore.restore`),
and say where it came from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from coordination.catalog.file.beside import Beside, BesideFile
from coordination.redis_url import redact_url
from coordination.runtime.context import Runtime



def path_of(catalog: Path, plan: str) -> Path:
    return _file(catalog, plan).path


def _file(catalog: Path, plan: str) -> BesideFile:
    return Beside.of(catalog).change_mirrors.record(f"{plan}.json")


def where(rt: Runtime) -> str:
    """The Redis ``rt`` uses, as a person reaches it."""
    if rt.embedded:
        return "the catalog's embedded Redis (COORD_REDIS_URL unset)"
    return f"the Redis at {redact_url(rt.url or '')} (COORD_REDIS_URL)"


def save(rt: Runtime, catalog: Path, plan: str) -> None:
    """Keep the change's record beside the catalog (after a landing or revert ended)."""
    fields = rt.changes.dump(plan)
    if not fields.get("ended_at"):
        return
    Beside.of(catalog).change_mirrors.write(f"{plan}.json", json.dumps(
        {"plan": plan, "from": where(rt), "saved_at": time.time(), "fields": fields},
        sort_keys=True).encode())


def carry_over(rt: Runtime, catalog: Path, plan: str) -> str | None:
    """The record kept beside the catalog carried into the Redis in use when it is newer
    there: where it came from (None: nothing carried over)."""
    try:
        doc = _file(catalog, plan).read_json()
        fields = {str(k): str(v) for k, v in doc["fields"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not rt.changes.restore(plan, fields):
        return None
    return str(doc.get("from") or "another Redis")


def kept_elsewhere(rt: Runtime, catalog: Path, plan: str) -> dict[str, str] | None:
    """What a reader that writes nothing (the web view) says when the record kept
    beside the catalog ended later than what the Redis in use has: {"state", "from",
    "file", "how"}; None: nothing newer is kept."""
    path = path_of(catalog, plan)
    try:
        doc = _file(catalog, plan).read_json()
        fields = doc["fields"]
        theirs = float(fields.get("ended_at") or 0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        here = float(rt.changes.dump(plan).get("ended_at") or 0)
    except ValueError:
        here = 0.0
    if theirs <= here:
        return None
    return {"state": str(fields.get("state") or ""), "from": str(doc.get("from") or ""),
            "file": str(path), "how": f"coord change status {plan} carries it over"}
