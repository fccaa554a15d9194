"""``forge:`` on a repo: which forge (GitHub, GitLab, Gitea/Forgejo) holds the repo's pull
requests, which project it is there, where its API is and which environment variables
hold its token and its webhook secret (names only: a catalog never holds a secret).

The rules are pure functions (:func:`forge_project`, :func:`forge_api`), used by the
model and by :mod:`coordination.forge` for a spec built in code; each is also a pattern
for `coord schema`."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from coordination.catalog.models.base import CatalogModel
from coordination.catalog.patterns import END, any_case

FORGE_KINDS = ("github", "gitlab", "gitea")

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
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
API_PATTERN = (rf"^(?:{any_case('https')}://[^\s/?#@]+|{any_case('http')}://"
               rf"(?:{any_case('localhost')}|127(?:\.[0-9]{{1,3}}){{3}}|\[::1\])(?::[0-9]+)?)"
               rf"(?:/[^\s?#]*)?{END}")

EnvName = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
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
    if v is not None and not EnvName.match(v):
        raise ValueError(f"{v!r} is not an environment variable's name (letters, digits, '_')")
    return v


def _project_rules() -> JsonDict:
    """``project``'s rule per kind, for `coord schema` (the model checks it in
    :func:`forge_project`)."""
    rules: list[Any] = []
    for kind, pattern in (("github", TWO_PARTS_PATTERN), ("gitea", TWO_PARTS_PATTERN),
                          ("gitlab", NESTED_PATTERN)):
        rules.append({"if": {"properties": {"kind": {"const": kind}}},
                      "then": {"properties": {"project": {"pattern": pattern}}}})
    return {"allOf": rules}


class RepoForge(CatalogModel, json_schema_extra=_project_rules()):
    """The forge holding a repo's pull requests (``land: pr``), and how coord reaches
    its API."""

    kind: Literal["github", "gitlab", "gitea"]
    """Which forge: github (and GitHub Enterprise), gitlab (gitlab.com or self-hosted),
    gitea (Gitea and Forgejo)."""
    project: str = Field(min_length=1, json_schema_extra={
        "pattern": r"^(?![\s\S]*\.(?:git|atom)" + END + ")" + NESTED_PATTERN[1:]})
    """The project on the forge: owner/name (GitHub, Gitea), group/subgroup/name (GitLab),
    as in its URL."""
    api: str | None = Field(None, min_length=1, json_schema_extra={"pattern": API_PATTERN})
    """The API's root URL; default per kind (https://api.github.com, https://gitlab.com/api/v4,
    https://gitea.com/api/v1). A bare host gets the kind's API path (/api/v3, /api/v4,
    /api/v1). https:// only; http:// only to localhost."""
    token_env: str | None = Field(None, json_schema_extra={"pattern": ENV_PATTERN})
    """The environment variable holding the API token (default GITHUB_TOKEN, GITLAB_TOKEN,
    GITEA_TOKEN); coord never writes, logs or prints its value."""
    webhook_secret_env: str | None = Field(None, json_schema_extra={"pattern": ENV_PATTERN})
    """The environment variable holding the secret the forge signs its webhooks with
    (default COORD_FORGE_WEBHOOK_SECRET)."""

    @field_validator("project")
    @classmethod
    def _project(cls, v: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        return forge_project(kind, v) if kind else v

    @field_validator("api")
    @classmethod
    def _api(cls, v: str | None) -> str | None:
        return None if v is None else forge_api(v)

    _env = field_validator("token_env", "webhook_secret_env")(staticmethod(env_name))
