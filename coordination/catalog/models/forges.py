"""``forge:`` on a repo: which forge (GitHub, GitLab, Gitea/Forgejo) holds the repo's pull
requests, which project it is there, where its API is and which environment variables
hold its token and its webhook secret (names only: a catalog never holds a secret).
The rules are :mod:`coordination.catalog.rules.forge_rules`'."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from coordination.catalog.rules.forge_rules import (
    API_PATTERN,
    ENV_PATTERN,
    FORGE_KINDS,
    NESTED_PATTERN,
    TWO_PARTS_PATTERN,
    env_name,
    forge_api,
    forge_auth,
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
    # auth: app is GitHub's (forge_auth)
    rules.append({"if": {"properties": {"kind": {"enum": ["gitlab", "gitea"]}}},
                  "then": {"properties": {"auth": {"const": "token"}}}})
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
    auth: Literal["token", "app"] = "token"
    """How coord authenticates: token (default: the token in token_env) or app (github
    only: a GitHub App; coord signs a JWT with the App's key and mints short-lived
    installation tokens, kept in memory only)."""
    app_id_env: str | None = Field(None, json_schema_extra={"pattern": ENV_PATTERN})
    """auth: app: the environment variable holding the App's id (default GITHUB_APP_ID)."""
    app_key_env: str | None = Field(None, json_schema_extra={"pattern": ENV_PATTERN})
    """auth: app: the environment variable holding the App's private key, the PEM text
    itself (default GITHUB_APP_PRIVATE_KEY); coord never writes, logs or prints it."""
    ca_file: str | None = Field(None, min_length=1)
    """A CA bundle (PEM file) coord verifies this forge's TLS certificate with: a
    private CA. Default: the system's trust store."""

    @field_validator("project")
    @classmethod
    def _project(cls, v: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        return forge_project(kind, v) if kind else v

    @field_validator("api")
    @classmethod
    def _api(cls, v: str | None) -> str | None:
        return None if v is None else forge_api(v)

    # (neither COORD_* nor PATH, HOME, PYTHON*, LD_*...: the catalog's check
    # rules/checks.forge_secret_variables names the repo)
    _env = field_validator("token_env", "webhook_secret_env", "app_id_env",
                           "app_key_env")(staticmethod(env_name))

    @model_validator(mode="after")
    def _auth(self) -> RepoForge:
        problem = forge_auth(self.kind, self.auth, self.app_id_env, self.app_key_env)
        if problem:
            raise ValueError(problem)
        return self
