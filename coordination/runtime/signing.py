"""Signed sweep specs: a command written into Redis by anyone without the key never runs.

Task messages carry only ids; the commands a worker runs come from the sweep
spec stored in Redis. With ``COORD_SIGNING_KEY`` set, the CLI that starts (or
resumes) a sweep signs the spec: HMAC-SHA256 over its canonical JSON (sorted
keys, no spaces), recorded beside it with the key's id (the first 16 hex
digits of SHA-256 of the key, so a mismatch can be named without revealing
the key). A worker with a key refuses a spec that is unsigned, signed with
another key, or changed since it was signed.

Rotation: give workers the new key as ``COORD_SIGNING_KEY`` and the old one as
``COORD_SIGNING_KEY_PREVIOUS`` (verify only) until sweeps signed with the old
key have ended; then drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from coordination.jsonable import JSONObject


def canonical(spec_json: object) -> bytes:
    """The signed bytes of a spec: given as JSON text, or as the document itself."""
    data = json.loads(spec_json) if isinstance(spec_json, str) else spec_json
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def sign(spec_json: str | JSONObject, key: str) -> dict[str, str]:
    """The record fields that sign ``spec_json`` with ``key``."""
    mac = hmac.new(key.encode(), canonical(spec_json), hashlib.sha256).hexdigest()
    return {"spec_sig": mac, "spec_key_id": key_id(key)}


def verify(record: Mapping[str, object], keys: list[str]) -> str | None:
    """None if ``record``'s spec is signed by one of ``keys``; else why not."""
    sig, kid, spec = record.get("spec_sig"), record.get("spec_key_id"), record.get("spec")
    if not sig:
        return "spec signature invalid: the sweep spec is unsigned"
    if spec is None:
        return "spec signature invalid: no spec"
    for key in keys:
        if kid and kid != key_id(key):
            continue
        try:
            want = hmac.new(key.encode(), canonical(spec), hashlib.sha256).hexdigest()
        except ValueError:
            return "spec signature invalid: the spec is not JSON"
        if hmac.compare_digest(want, str(sig)):
            return None
        return f"spec signature invalid: the spec changed after it was signed (key {kid})"
    return f"spec signature invalid: signed with key {kid}, which this worker does not hold"
