"""The rules of a repo's ``forge:`` as pure functions, stdlib only: which kinds there are,
what a project path and an API root may be (https://, or http:// to loopback), what an
environment variable's name is. The model (:mod:`coordination.catalog.models.forges`)
and :mod:`coordination.forge` (a spec built in code) both check with them, so the
forge floor imports no pydantic; each rule is also a pattern for `coord schema`."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from coordination.catalog.rules.patterns import END, any_case

FORGE_KINDS = ("github", "gitlab", "gitea")
#: How coord authenticates to a forge: a token (every kind), or a GitHub App.
FORGE_AUTHS = ("token", "app")

#: One part of a project's path: what GitHub, GitLab and Gitea all take in a name
#: (letters, digits, ``._-``; not starting with ``-``; not ``.`` or ``..``).
_PART = r"(?!\.\.?(?:/|$))[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}"
_PART_JS = r"(?!\.\.?(?:/|" + END + r"))[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}"
#: GitHub and Gitea: ``owner/name``; GitLab: ``group/subgroup/.../name``.
_TWO = re.compile(rf"^{_PART}/{_PART}\Z")
_NESTED = re.compile(rf"^{_PART}(?:/{_PART}){{1,20}}\Z")
TWO_PARTS_PATTERN = rf"^{_PART_JS}/{_PART_JS}{END}"
NESTED_PATTERN = rf"^{_PART_JS}(?:/{_PART_JS}){{1,20}}{END}"

#: An API root: https://, or http:// to a loopback host (a token in clear text goes
#: nowhere but this machine).
API_PATTERN = (rf"^(?:{any_case('https')}://[^\s/?#@]+|{any_case('http')}://"
               rf"(?:{any_case('localhost')}|127(?:\.[0-9]{{1,3}}){{3}}|\[::1\])(?::[0-9]+)?)"
               rf"(?:/[^\s?#]*)?{END}")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*" + END


def is_loopback(host: str | None) -> bool:
    """Is ``host`` this machine (``localhost``, 127.0.0.0/8, ``::1``)?"""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def forge_project(kind: str, project: str) -> str:
    """``project`` as ``kind`` names a project: ``owner/name`` (GitHub, Gitea), or
    ``group/subgroup/name`` (GitLab); else a ValueError that says which."""
    if kind == "gitlab":
        if not _NESTED.match(project):
            raise ValueError(f"{project!r} is not a GitLab project path: group/name or "
                             "group/subgroup/name (letters, digits, '._-'), as in its URL")
    elif not _TWO.match(project):
        raise ValueError(f"{project!r} is not a {kind} project: owner/name (letters, digits, "
                         "'._-'), as in its URL")
    if project.endswith((".git", ".atom")):
        raise ValueError(f"{project!r}: write the project without its '.git' ending")
    return project


def forge_api(api: str) -> str:
    """An API root coord may send a token to: ``https://``, or ``http://`` to a
    loopback host only; no user, password, query or fragment. Returned as written
    (:func:`coordination.forge.spec_of` drops a trailing ``/``)."""
    parts = urlsplit(api)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{api!r} is not an https:// URL of the forge's API")
    if scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{api!r}: http:// would send the token in clear text; use "
                         "https:// (http:// is allowed only for localhost / 127.0.0.1)")
    if parts.username or parts.password or parts.query or parts.fragment or any(
            c.isspace() for c in api):
        raise ValueError(f"{api!r}: the API root only (no user, password, query or "
                         "fragment: the token comes from token_env)")
    return api


def env_name(v: str | None) -> str | None:
    if v is not None and not _ENV_NAME.match(v):
        raise ValueError(f"{v!r} is not an environment variable's name (letters, digits, '_')")
    return v


#: The process basics a secret's variable may not be (a token read from ``PATH`` would
#: be sent to the forge as a bearer token; one from ``PYTHONPATH`` ...); and any name
#: starting with one of :data:`BASIC_PREFIXES`.
PROCESS_BASICS = frozenset({"PATH", "HOME", "USER", "SHELL", "PWD", "LANG", "TERM"})
BASIC_PREFIXES = ("COORD_", "PYTHON", "LD_")
#: What each secret-naming field may name although it starts with ``COORD_``: its own
#: default (the webhook secret's is ``COORD_FORGE_WEBHOOK_SECRET``).
OWN_DEFAULTS = {"webhook_secret_env": "COORD_FORGE_WEBHOOK_SECRET"}


def secret_env_name(v: str | None, field: str) -> str | None:
    """A forge field naming the variable of a secret (``token_env``, ``app_key_env``,
    ``webhook_secret_env``): a variable's name, and neither one of coord's own
    (``COORD_*``: ``token_env: COORD_SIGNING_KEY`` would send the signing key to the
    forge as a bearer token) nor a process basic (:data:`PROCESS_BASICS`, ``PYTHON*``,
    ``LD_*``). ValueError saying how to fix it."""
    env_name(v)
    if v is None or v == OWN_DEFAULTS.get(field):
        return v
    upper = v.upper()
    if upper in PROCESS_BASICS or upper.startswith(BASIC_PREFIXES):
        what = ("one of coord's own variables" if upper.startswith("COORD_")
                else "a variable every process has")
        raise ValueError(
            f"{field}: {v!r} is {what}, never a forge secret's (coord would send its value "
            f"to the forge); name a variable of its own, e.g. {field}: "
            f"{_example(field)}, and give the secret there")
    return v


def _example(field: str) -> str:
    return {"token_env": "FORGE_TOKEN", "app_key_env": "GITHUB_APP_PRIVATE_KEY",
            "webhook_secret_env": "FORGE_WEBHOOK_SECRET"}.get(field, "FORGE_SECRET")


def forge_auth(kind: str, auth: str, app_id_env: str | None = None,
               app_key_env: str | None = None) -> str | None:
    """What is wrong with ``auth`` on a forge of ``kind`` (None: nothing): an unknown
    auth, an App on a forge that has none (GitHub Apps are GitHub's), or App variables
    named under ``auth: token`` (where they would be ignored)."""
    if auth not in FORGE_AUTHS:
        return (f"auth {auth!r} is not one of " + ", ".join(FORGE_AUTHS) +
                " (token: the token in token_env; app: a GitHub App)")
    if auth == "app" and kind != "github":
        return (f"auth: app is for GitHub Apps, and this forge is {kind}: use auth: token "
                "with a token in token_env")
    if auth == "token" and (app_id_env or app_key_env):
        return ("app_id_env and app_key_env are read only with auth: app: add auth: app, "
                "or remove them")
    return None
