"""Signed sweep specs: a command written into Redis by anyone without the key never runs.

Task messages carry only ids; the commands a worker runs come from the sweep
spec stored in Redis. With ``COORD_SIGNING_KEY`` set, the process that writes a
spec (the CLI starting or resuming a sweep, whoever starts its rollback) signs
it: HMAC-SHA256 over the sweep's id, the run and the exact text of the spec
(:func:`message`), recorded beside it as ``spec_sig`` (``v2:<hex>``) with the
key's id (the first 16 hex digits of SHA-256 of the key, so a mismatch can be
named without revealing the key). A spec is therefore valid only for its own
sweep and run: copied into another sweep's record, or over another run of the
same sweep, it is refused.

What a worker runs (:func:`refusal`):

- with a key: only a spec signed, in this format, by that key (or
  ``COORD_SIGNING_KEY_PREVIOUS``) for this sweep and run;
- without a key: an unsigned spec, unless ``COORD_REQUIRE_SIGNED=1``; a signed
  one only with ``COORD_ACCEPT_UNSIGNED=1`` (it cannot check it), never under
  ``COORD_REQUIRE_SIGNED=1``.

The verdict is computed on the very text that is parsed, read in the same
HMGET as the signature and the run (:mod:`coordination.sweeps.spec_store`), and
cached only with the spec parsed from it.

Signatures of coord 0.2 (``spec_sig`` a bare hex digest, over the spec alone)
are refused with a message naming the upgrade: they are exactly what a copied
spec would carry.

Rotation: give workers the new key as ``COORD_SIGNING_KEY`` and the old one as
``COORD_SIGNING_KEY_PREVIOUS`` (verify only) until sweeps signed with the old
key have ended; then drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from coordination.errors import OperationFailed

#: The prefix of a signature in the current format (sweep id, run and spec).
VERSION = "v2"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SpecRefused(OperationFailed):
    """A stored spec failed its check, so nothing may be derived from it (a resume
    or a rollback would otherwise sign what someone wrote into Redis)."""


@dataclass(frozen=True)
class Policy:
    """What a process accepts: its keys (current first) and the two switches."""

    keys: tuple[str, ...] = ()
    accept_unsigned: bool = False  # without a key: run signed specs unchecked
    require_signed: bool = False  # refuse unsigned specs even without a key

    @property
    def fingerprint(self) -> tuple[object, ...]:
        """What a cached verdict depends on (key ids, never keys)."""
        return (tuple(key_id(k) for k in self.keys), self.accept_unsigned, self.require_signed)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def message(sweep_id: str, run: int, spec_text: str) -> bytes:
    """The signed bytes: a header naming the format, the sweep and the run (JSON, so
    no sweep id can pass for another header), a newline, then the spec's text."""
    head = json.dumps(["coord-sweep-spec", VERSION, sweep_id, int(run)], separators=(",", ":"))
    return head.encode() + b"\n" + spec_text.encode("utf-8", "surrogatepass")


def _mac(key: str, sweep_id: str, run: int, spec_text: str) -> str:
    return hmac.new(key.encode(), message(sweep_id, run, spec_text), hashlib.sha256).hexdigest()


def sign(sweep_id: str, run: int, spec_text: str, key: str) -> dict[str, str]:
    """The record fields that sign ``spec_text`` as run ``run`` of ``sweep_id``."""
    return {"spec_sig": f"{VERSION}:{_mac(key, sweep_id, run, spec_text)}",
            "spec_key_id": key_id(key)}


def refusal(sweep_id: str, run: int, spec_text: object, sig: object, kid: object,
            policy: Policy) -> str | None:
    """None if a worker under ``policy`` may run ``spec_text`` as run ``run`` of
    ``sweep_id`` (signed with ``sig`` by key ``kid``, as read with it); else why not."""
    if not sig:
        if policy.keys:
            return "spec signature invalid: the sweep spec is unsigned"
        if policy.require_signed:
            return ("spec signature invalid: the sweep spec is unsigned and this worker "
                    "requires signed specs (COORD_REQUIRE_SIGNED=1)")
        return None
    if not policy.keys:
        if policy.accept_unsigned and not policy.require_signed:
            return None
        return ("spec signed but this worker has no key: give it COORD_SIGNING_KEY "
                "(or COORD_ACCEPT_UNSIGNED=1 to run signed sweeps unchecked)")
    if not isinstance(spec_text, str):
        return "spec signature invalid: the spec is not text"
    sig = str(sig)
    version, _, mac = sig.partition(":")
    if version != VERSION:
        if _HEX64.match(sig):
            return ("spec signature invalid: signed in coord 0.2's format (the spec alone, "
                    "not its sweep and run), which workers refuse since 0.3: start or "
                    "resume the sweep with coord 0.3 or later to sign it again")
        return "spec signature invalid: not a signature this coord knows"
    held = [k for k in policy.keys if not kid or kid == key_id(k)]
    if not held:
        return f"spec signature invalid: signed with key {kid}, which this worker does not hold"
    if any(hmac.compare_digest(_mac(k, sweep_id, run, spec_text), mac) for k in held):
        return None
    return ("spec signature invalid: the spec is not the one signed for this sweep and run "
            f"(changed, or copied from another sweep or run; key {kid or 'unnamed'})")


# -- landing manifests (``coord change land``) ----------------------------------------
# Signed like specs, under their own header: a manifest is only ever valid as the
# manifest of its own plan, and no spec passes for a manifest or the other way round.


def manifest_message(plan: str, manifest_text: str) -> bytes:
    head = json.dumps(["coord-change-manifest", VERSION, plan], separators=(",", ":"))
    return head.encode() + b"\n" + manifest_text.encode("utf-8", "surrogatepass")


def sign_manifest(plan: str, manifest_text: str, key: str) -> dict[str, str]:
    """The change fields that sign ``manifest_text`` as ``plan``'s landing manifest."""
    mac = hmac.new(key.encode(), manifest_message(plan, manifest_text), hashlib.sha256)
    return {"manifest_sig": f"{VERSION}:{mac.hexdigest()}", "manifest_key_id": key_id(key)}


def manifest_refusal(plan: str, manifest_text: str, sig: str | None, kid: str | None,
                     policy: Policy) -> str | None:
    """None if a landing under ``policy`` may carry on from ``manifest_text``; else why
    not (the same rules as a worker's for specs: :func:`refusal`)."""
    if not sig or not policy.keys:  # unsigned, or no key to check with: the spec rules
        why = refusal(plan, 0, manifest_text, sig, kid, policy)
        return why and why.replace("sweep spec", "landing manifest").replace("spec ", "manifest ")
    version, _, mac = sig.partition(":")
    held = [k for k in policy.keys if not kid or kid == key_id(k)]
    if version != VERSION or not held:
        return f"manifest signature invalid: signed with key {kid or 'unnamed'}, not held here"
    for k in held:
        want = hmac.new(k.encode(), manifest_message(plan, manifest_text), hashlib.sha256)
        if hmac.compare_digest(want.hexdigest(), mac):
            return None
    return "manifest signature invalid: the landing manifest was changed after it was signed"
