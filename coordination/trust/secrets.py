"""The secrets coord holds, by the names of the environment variables that carry them,
and an environment with them taken out: what a todo's command (or any repo's code coord
runs: a change's ``prepare:``, a cache probe, a land command) is given.

A todo's command is code from the repo it runs in (its tests, their third-party
packages, a script committed there): whatever its environment holds, it holds. Until
0.6 a worker handed every todo its own environment, ``COORD_SIGNING_KEY`` included, and
a script committed in a repo sealed a gate decision with it. Now:

- :func:`secret_names` is the one list of what never reaches such code: coord's own
  secrets (the signing keys and the file of one, the audit key, the MCP token, the
  Sentinel password, the web view's and Flower's logins, the forge webhook secret), any
  other ``COORD_*`` variable whose name says it is one (``..._KEY``, ``..._TOKEN``,
  ``..._SECRET``, ``..._PASSWORD``, ``..._AUTH``), the forge tokens and App key by their
  default names (``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``GITEA_TOKEN``,
  ``GITHUB_APP_PRIVATE_KEY``), and every variable the catalog names as a secret (each
  repo's ``forge: {token_env, app_key_env, webhook_secret_env}``): a process that runs
  repos' code learns those from its catalog (:func:`catalog_secret_names`) and says them
  once (:func:`hold_names`), or passes them as ``token_envs``;
- :func:`without_secrets` is an environment without them, and with the password taken
  out of every ``COORD_*_URL`` (the Redis URL keeps its host, port and database: a todo
  that reaches coord does so through its worker, :mod:`workers.context_proxy`).

What a todo needs from coord it gets from its worker: ``COORD_RUN_TOKEN``, a key derived
for its own run (:mod:`coordination.trust.runkeys`), which seals nothing else.
A todo that needs a token for its own work (publishing a release) names it in its
``env:`` (the signed spec's), which is laid over this environment.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from coordination.redis_url import split_userinfo, url_password

#: coord's own secrets, each by its variable.
COORD_SECRETS = (
    "COORD_SIGNING_KEY", "COORD_SIGNING_KEY_PREVIOUS", "COORD_AUDIT_KEY", "COORD_MCP_TOKEN",
    "COORD_SENTINEL_PASSWORD", "COORD_UI_AUTH", "COORD_FLOWER_AUTH", "COORD_APPROVE_KEY",
    "COORD_FORGE_WEBHOOK_SECRET", "COORD_SIGNING_KEY_FILE",
)
#: The forge tokens of the three kinds, by their default variables (a repo's
#: ``forge: {token_env: NAME}`` adds its own: :func:`secret_names`'s ``token_envs``).
FORGE_TOKENS = ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITEA_TOKEN", "GITHUB_APP_PRIVATE_KEY")
#: The fields of a repo's ``forge:`` that name a secret's variable.
FORGE_SECRET_FIELDS = ("token_env", "app_key_env", "webhook_secret_env")

#: The variables this process's catalog names as secrets (:func:`hold_names`).
_held: frozenset[str] = frozenset()
_held_tokens: frozenset[str] = frozenset()


def catalog_secret_names(forges: Iterable[object]) -> tuple[frozenset[str], frozenset[str]]:
    """The variables the ``forge:`` of each repo names as a secret (its
    :data:`FORGE_SECRET_FIELDS`; an absent field names none: its default is among
    :func:`secret_names` already), and which of them are forge tokens (``token_env``).
    ``forges``: the catalog's ``forge:`` objects (None for a repo without one)."""
    out: set[str] = set()
    tokens: set[str] = set()
    for forge in forges:
        for f in FORGE_SECRET_FIELDS:
            name = getattr(forge, f, None) if forge is not None else None
            if isinstance(name, str) and name:
                out.add(name)
                if f == "token_env":
                    tokens.add(name)
    return frozenset(out), frozenset(tokens)


def hold_names(names: Iterable[str], tokens: Iterable[str] = ()) -> None:
    """Say, once for this process (a worker at its start, a CLI before its embedded
    workers fork), the variables its catalog names as secrets (``tokens``: those of
    them that are forge tokens, which a change's land command keeps): every environment
    made here for repos' code leaves them out from then on (added to those said before)."""
    global _held, _held_tokens
    _held = _held | frozenset(n for n in names if n)
    _held_tokens = _held_tokens | frozenset(n for n in tokens if n)


def held_names() -> frozenset[str]:
    """What :func:`hold_names` was told."""
    return _held


#: A ``COORD_*`` variable ending so is a secret, whether coord knows its name or not.
SECRET_SUFFIXES = ("_KEY", "_KEY_PREVIOUS", "_TOKEN", "_SECRET", "_PASSWORD", "_AUTH")
#: ``COORD_*`` variables that end like a secret and are none: a todo is told them.
NOT_SECRETS = frozenset({"COORD_RUN_TOKEN"})


def secret_names(token_envs: Iterable[str] = ()) -> frozenset[str]:
    """The variables no repo's code is given by name: coord's own secrets, the forge
    tokens, and ``token_envs`` (the ``token_env`` of each repo's ``forge:``)."""
    return frozenset((*COORD_SECRETS, *FORGE_TOKENS, *_held, *(t for t in token_envs if t)))


def is_secret(name: str, names: frozenset[str] | None = None) -> bool:
    """Is variable ``name`` a secret (one of ``names``, default :func:`secret_names`, or
    a ``COORD_*`` one whose name says so)?"""
    if name in (secret_names() if names is None else names):
        return True
    return (name.startswith("COORD_") and name not in NOT_SECRETS
            and name.endswith(SECRET_SUFFIXES))


def _without_password(url: str) -> str:
    """``url`` with its user info (the password, and the user it goes with) taken out."""
    parts = split_userinfo(url)
    return url if parts is None else f"{parts[0]}://{parts[2]}"


def without_secrets(env: Mapping[str, str], token_envs: Iterable[str] = (), *,
                    forge_tokens: bool = True) -> dict[str, str]:
    """``env`` without a secret (:func:`is_secret`), and every ``COORD_*_URL`` without
    its password. ``forge_tokens=False``: the forge tokens stay (a change's land
    command, the catalog's own, may push through the forge with them)."""
    names = (secret_names(token_envs) if forge_tokens
             else frozenset((*COORD_SECRETS, *(_held - _held_tokens))))
    out: dict[str, str] = {}
    for k, v in env.items():
        if is_secret(k, names):
            continue
        out[k] = _without_password(v) if k.startswith("COORD_") and k.endswith("_URL") else v
    return out


def without_secrets_b(env: Mapping[bytes, bytes],
                      token_envs: Iterable[str] = ()) -> dict[bytes, bytes]:
    """:func:`without_secrets` of an environment as bytes (``os.environb``), undecoded
    but for a ``COORD_*_URL``'s value (a worker spawns each todo with it: names are
    compared as bytes)."""
    names = {n.encode() for n in secret_names(token_envs)}
    out: dict[bytes, bytes] = {}
    for k, v in env.items():
        if k in names:
            continue
        if k.startswith(b"COORD_"):
            if k.endswith(_SUFFIXES_B) and k not in _NOT_SECRETS_B:
                continue
            if k.endswith(b"_URL"):
                v = _without_password(v.decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape")
        out[k] = v
    return out


def held_secret_values(environ: Mapping[str, str] | None = None,
                  extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The values of the secrets this process holds, to mask in everything a todo's
    run leaves: each secret variable's (:func:`is_secret`) of ``environ`` (default
    this process's), the password of every ``COORD_*_URL``, and ``extra`` (a signing key
    read from its file). Values shorter than 8 characters are left (masking ``on``
    would garble every output)."""
    env = os.environ if environ is None else environ
    names = secret_names()
    found: set[str] = set()
    for k, v in env.items():
        if not v:
            continue
        if is_secret(k, names):
            found.add(v)
            found.update(line for line in v.splitlines() if len(line) >= 8)
        elif k.startswith("COORD_") and k.endswith("_URL"):
            pw = url_password(v)
            if pw:
                found.add(pw)
                found.add(unquote(pw))
    found.update(x for x in extra if x)
    return tuple(sorted((v for v in found if len(v) >= 8), key=lambda v: (-len(v), v)))


_SUFFIXES_B = tuple(s.encode() for s in SECRET_SUFFIXES)
_NOT_SECRETS_B = frozenset(n.encode() for n in NOT_SECRETS)


#: The shortest base64 piece of a value that is masked: shorter ones would mask common
#: words of any output.
MIN_ENCODED = 8


def value_forms(value: str) -> tuple[str, ...]:
    """``value`` and the forms a todo (or a forge's error) may print it in, each to be
    masked as the value is: lower- and upper-cased, and base64 (standard and URL-safe).

    base64 is masked where it cannot differ from the value's own encoding, whatever
    comes before or after the value: at each of the three byte alignments, the
    encoding of the value's whole 3-byte groups (so ``echo "$TOKEN" | base64``, whose
    encoding ends with the newline's, and a value inside a longer encoded text are
    both caught; at most two bytes of the value at each end stay visible, encoded)."""
    out = {value, value.lower(), value.upper()}
    raw = value.encode("utf-8", "surrogateescape")
    for skip in range(3):
        body = raw[skip:]
        body = body[:len(body) - len(body) % 3]
        if len(body) < 6:
            continue
        enc = base64.b64encode(body).decode("ascii")
        if len(enc) >= MIN_ENCODED:
            out.add(enc)
            out.add(enc.replace("+", "-").replace("/", "_"))
    return tuple(sorted(out, key=lambda v: (-len(v), v)))
