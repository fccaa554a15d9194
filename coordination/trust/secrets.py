"""The secrets coord holds, by the names of the environment variables that carry them,
and an environment with them taken out: what a todo's command (or any repo's code coord
runs: a change's ``prepare:``, a cache probe, a land command) is given.

A todo's command is code from the repo it runs in (its tests, their third-party
packages, a script committed there): whatever its environment holds, it holds. Until
0.6 a worker handed every todo its own environment, ``COORD_SIGNING_KEY`` included, and
a script committed in a repo sealed a gate decision with it. Now:

- :func:`secret_names` is the one list of what never reaches such code: coord's own
  secrets (the signing keys, the audit key, the MCP token, the Sentinel password, the
  web view's and Flower's logins, the forge webhook secret), any other ``COORD_*``
  variable whose name says it is one (``..._KEY``, ``..._TOKEN``, ``..._SECRET``,
  ``..._PASSWORD``, ``..._AUTH``), and the forge tokens (``GITHUB_TOKEN``,
  ``GITLAB_TOKEN``, ``GITEA_TOKEN``, and whatever a repo's ``forge: {token_env: ...}``
  names: pass those as ``token_envs``);
- :func:`without_secrets` is an environment without them, and with the password taken
  out of every ``COORD_*_URL`` (the Redis URL keeps its host, port and database: a todo
  that reaches coord does so through its worker, :mod:`workers.context_proxy`).

What a todo needs from coord it gets from its worker: ``COORD_RUN_TOKEN``, a key derived
for its own run (:mod:`coordination.trust.runkeys`), which seals nothing else.
A todo that needs a token for its own work (publishing a release) names it in its
``env:`` (the signed spec's), which is laid over this environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: coord's own secrets, each by its variable.
COORD_SECRETS = (
    "COORD_SIGNING_KEY", "COORD_SIGNING_KEY_PREVIOUS", "COORD_AUDIT_KEY", "COORD_MCP_TOKEN",
    "COORD_SENTINEL_PASSWORD", "COORD_UI_AUTH", "COORD_FLOWER_AUTH", "COORD_APPROVE_KEY",
    "COORD_FORGE_WEBHOOK_SECRET",
)
#: The forge tokens of the three kinds, by their default variables (a repo's
#: ``forge: {token_env: NAME}`` adds its own: :func:`secret_names`'s ``token_envs``).
FORGE_TOKENS = ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITEA_TOKEN")
#: A ``COORD_*`` variable ending so is a secret, whether coord knows its name or not.
SECRET_SUFFIXES = ("_KEY", "_KEY_PREVIOUS", "_TOKEN", "_SECRET", "_PASSWORD", "_AUTH")
#: ``COORD_*`` variables that end like a secret and are none: a todo is told them.
NOT_SECRETS = frozenset({"COORD_RUN_TOKEN"})


def secret_names(token_envs: Iterable[str] = ()) -> frozenset[str]:
    """The variables no repo's code is given by name: coord's own secrets, the forge
    tokens, and ``token_envs`` (the ``token_env`` of each repo's ``forge:``)."""
    return frozenset((*COORD_SECRETS, *FORGE_TOKENS, *(t for t in token_envs if t)))


def is_secret(name: str, names: frozenset[str] | None = None) -> bool:
    """Is variable ``name`` a secret (one of ``names``, default :func:`secret_names`, or
    a ``COORD_*`` one whose name says so)?"""
    if name in (secret_names() if names is None else names):
        return True
    return (name.startswith("COORD_") and name not in NOT_SECRETS
            and name.endswith(SECRET_SUFFIXES))


def _without_password(url: str) -> str:
    """``url`` with its user info (the password, and the user it goes with) taken out."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    return f"{head}://{hostpart}"


def without_secrets(env: Mapping[str, str], token_envs: Iterable[str] = (), *,
                    forge_tokens: bool = True) -> dict[str, str]:
    """``env`` without a secret (:func:`is_secret`), and every ``COORD_*_URL`` without
    its password. ``forge_tokens=False``: the forge tokens stay (a change's land
    command, the catalog's own, may push through the forge with them)."""
    names = secret_names(token_envs) if forge_tokens else frozenset(COORD_SECRETS)
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


_SUFFIXES_B = tuple(s.encode() for s in SECRET_SUFFIXES)
_NOT_SECRETS_B = frozenset(n.encode() for n in NOT_SECRETS)
