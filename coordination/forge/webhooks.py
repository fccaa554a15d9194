"""Webhook deliveries from a forge: the signature check (pure functions: the body's bytes,
the headers, the secret) and the event, parsed into :mod:`coordination.forge.base`'s
records.

- GitHub signs with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``;
- GitLab sends the secret itself in ``X-Gitlab-Token`` (compared in constant time);
- Gitea signs with ``X-Gitea-Signature: <hex HMAC-SHA256>`` (Forgejo also with
  ``X-Forgejo-Signature``, the same value).

The secret comes from ``COORD_FORGE_WEBHOOK_SECRET`` or the variable a forge's
``webhook_secret_env`` names (:func:`webhook_secret`). A caller refuses a delivery
whose signature does not verify (401) before parsing anything of it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, cast

from coordination.errors import ForgeConfigError
from coordination.forge.base import WEBHOOK_SECRET_ENV, ForgeEvent, ForgeSpec, Kind
from coordination.forge.events import gitea_event, github_event, gitlab_event
from coordination.forge.issues import IssueEvent, issue_event

# The event records themselves are coordination.forge.base's (import them from there);
# an issue's is coordination.forge.issues'.
__all__ = ["delivery_id", "event_name", "parse_event", "sign", "verify_signature",
           "webhook_secret", "IssueEvent"]


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _hmac_hex(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign(kind: Kind, body: bytes, secret: str) -> dict[str, str]:
    """The headers ``kind`` sends to prove ``body`` is its (what a fake forge and the
    tutorial's test forge send)."""
    if kind == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hmac_hex(body, secret)}
    if kind == "gitlab":
        return {"X-Gitlab-Token": secret}
    if kind == "gitea":
        return {"X-Gitea-Signature": _hmac_hex(body, secret)}
    raise ForgeConfigError(f"no webhook signature for forge kind {kind!r}")


def verify_signature(kind: Kind, headers: Mapping[str, str], body: bytes,
                     secret: str) -> bool:
    """Does ``body`` carry ``kind``'s signature made with ``secret``? False for a
    missing or malformed header, and always for an empty secret (an unset secret
    never lets a delivery in)."""
    if not secret:
        return False
    h = _lower(headers)
    if kind == "github":
        got = h.get("x-hub-signature-256", "")
        want = "sha256=" + _hmac_hex(body, secret)
    elif kind == "gitlab":
        got, want = h.get("x-gitlab-token", ""), secret
    elif kind == "gitea":
        got = h.get("x-gitea-signature") or h.get("x-forgejo-signature") or ""
        want = _hmac_hex(body, secret)
    else:
        return False
    return hmac.compare_digest(got.encode(), want.encode())


def webhook_secret(env: Mapping[str, str], spec: ForgeSpec | None = None) -> str:
    """The webhook secret of ``spec``'s forge (its ``webhook_secret_env``, else
    ``COORD_FORGE_WEBHOOK_SECRET``): :class:`ForgeConfigError` naming the variable when
    it is unset or empty (a receiver without a secret refuses to start)."""
    name = spec.webhook_secret_env if spec is not None else WEBHOOK_SECRET_ENV
    value = env.get(name, "")
    if not value:
        raise ForgeConfigError(
            f"no webhook secret: {name} is not set",
            hint=f"set {name} to the secret the forge's webhook is configured with")
    return value


def event_name(kind: Kind, headers: Mapping[str, str]) -> str:
    """The delivery's event as the forge names it (``pull_request``, ``Merge Request
    Hook``...); empty when the header is missing."""
    h = _lower(headers)
    key = {"github": "x-github-event", "gitlab": "x-gitlab-event"}.get(kind)
    if key:
        return h.get(key, "")
    return h.get("x-gitea-event-type") or h.get("x-gitea-event") or h.get("x-forgejo-event", "")


def delivery_id(kind: Kind, headers: Mapping[str, str]) -> str | None:
    """The forge's id of this delivery (a redelivery keeps it), when it sends one."""
    h = _lower(headers)
    for key in {"github": ("x-github-delivery",),
                "gitlab": ("x-gitlab-event-uuid", "idempotency-key"),
                "gitea": ("x-gitea-delivery", "x-forgejo-delivery")}.get(kind, ()):
        if h.get(key):
            return h[key]
    return None


def parse_event(kind: Kind, headers: Mapping[str, str],
                body: bytes) -> ForgeEvent | IssueEvent | None:
    """The event a (verified) delivery carries, or None for one coord does not use (a
    ping, a comment, a tag push). An issue's (``issues``, GitLab ``Issue Hook``) is an
    :class:`~coordination.forge.issues.IssueEvent`. A body that is not a JSON object is
    a ValueError."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the {kind} delivery is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"the {kind} delivery is not a JSON object")
    name, delivery = event_name(kind, headers), delivery_id(kind, headers)
    data = cast("dict[str, Any]", payload)
    parse = {"github": github_event, "gitlab": gitlab_event, "gitea": gitea_event}.get(kind)
    if parse is None:
        return None
    try:
        return issue_event(kind, name, data, delivery) or parse(name, data, delivery)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the {kind} {name!r} delivery lacks {exc}") from None
