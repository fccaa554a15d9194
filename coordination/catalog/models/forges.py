"""``forge:`` on a repo: which forge (GitHub, GitLab, Gitea/Forgejo) holds the repo's pull
requests, which project it is there, where its API is and which environment variables
hold its token and its webhook secret (names only: a catalog never holds a secret).
The rules are :mod:`coordination.catalog.rules.forge_rules`'."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from coordination.catalog.rules.forge_rules import (
    API_PATTERN,
    ENV_PATTERN,
    FORGE_KINDS,
    NESTED_PATTERN,
    TWO_PARTS_PATTERN,
    env_name,
    forge_api,
    forge_project,
    is_loopback,
)
from coordination.catalog.models.base import CatalogModel
from coordination.catalog.rules.patterns import END

__all__ = ["FORGE_KINDS", "RepoForge", "forge_api", "forge_project", "is_loopback"]


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
    /api/v1), except GitHub's own API hosts (api.github.com, and GitHub Enterprise Cloud
    with data residency's api.SUBDOMAIN.ghe.com: used as given). https:// only; http://
    only to localhost."""
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
