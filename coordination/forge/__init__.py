"""Forges: the pull (merge) requests, reviews, checks and merges of GitHub (and GitHub
Enterprise), GitLab (gitlab.com and self-hosted) and Gitea/Forgejo, through their REST
APIs, behind one :class:`~coordination.forge.base.Forge` protocol.

    base.py       the protocol and its typed records (what change/ reads)
    http.py       the HTTP client every kind shares: token, rate limits, retries, pages
    app_auth.py   a GitHub App's credentials (auth: app): the JWT, installation tokens
    rest.py       RestForge: what the three REST clients share (a PR read, comment,
                  status, close, the merge pinned to its head)
    github.py     GitHub and GitHub Enterprise
    gitlab.py     GitLab
    gitea.py      Gitea and Forgejo
    verdict.py    the blockers every kind names alike (missing review, check, conflict)
    stub.py       in memory, for unit tests (StubForge, StubForges)
    webhooks.py   webhook signatures (pure functions) and the secret's variable
    events.py     each forge's webhook payloads parsed into base.py's event records
    issues.py     a project's issues (create, read, edit, comment) over a client's session
    issue_link.py a catalog issue mirrored to a forge issue (coord issue link)

:func:`forge_for` gives a repo's forge; a caller that needs a stand-in takes a
:class:`~coordination.forge.base.ForgeFactory` parameter defaulting to it. Importing this
package imports no HTTP client (a kind's module loads httpx on first use).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

from coordination.catalog.rules.forge_rules import (
    env_name,
    forge_api,
    forge_auth,
    forge_project,
    secret_env_name,
)
from coordination.errors import ForgeConfigError
from coordination.forge.base import (
    API_PATH,
    DEFAULT_API,
    DEFAULT_TOKEN_ENV,
    KINDS,
    WEBHOOK_SECRET_ENV,
    Forge,
    ForgeFields,
    ForgeSpec,
    Kind,
    Options,
    RepoLike,
)

__all__ = ["Forge", "ForgeSpec", "Options", "forge_for", "open_forge", "spec_of"]


def spec_of(fields: ForgeFields, *, repo: str = "") -> ForgeSpec:
    """The catalog's ``forge:`` with every default filled in, checked again (a spec
    built in code has not been through the catalog): :class:`ForgeConfigError` naming
    ``repo`` otherwise."""
    where = f"repo {repo!r}: forge: " if repo else "forge: "
    kind = fields.kind
    if kind not in (*KINDS, "stub"):
        raise ForgeConfigError(f"{where}unknown kind {kind!r}",
                               hint="kind is one of " + ", ".join(KINDS))
    try:
        forge_project(kind, fields.project)
        api = forge_api(fields.api) if fields.api else DEFAULT_API.get(kind, "http://stub.invalid")
        secret_env_name(fields.token_env, "token_env")
        secret_env_name(fields.webhook_secret_env, "webhook_secret_env")
        # The App's fields (a spec built in code may predate them: read as absent).
        auth = getattr(fields, "auth", None) or "token"
        app_id_env = env_name(getattr(fields, "app_id_env", None))
        app_key_env = secret_env_name(getattr(fields, "app_key_env", None), "app_key_env")
        ca_file = getattr(fields, "ca_file", None)
        problem = forge_auth(kind, auth, app_id_env, app_key_env)
        if problem:
            raise ValueError(problem)
    except ValueError as exc:
        raise ForgeConfigError(f"{where}{exc}") from None
    api = api.rstrip("/")
    if fields.api and kind in API_PATH and urlsplit(api).path in ("", "/") and not (
            is_api_host(kind, urlsplit(api).hostname)):
        api += API_PATH[kind]  # a bare host: the kind's API path (GHE, self-hosted)
    return ForgeSpec(kind=cast("Kind", kind), project=fields.project, api=api,
                     token_env=fields.token_env or DEFAULT_TOKEN_ENV[kind],
                     webhook_secret_env=fields.webhook_secret_env or WEBHOOK_SECRET_ENV,
                     auth=auth, app_id_env=app_id_env or "GITHUB_APP_ID",
                     app_key_env=app_key_env or "GITHUB_APP_PRIVATE_KEY", ca_file=ca_file)


def is_api_host(kind: str, host: str | None) -> bool:
    """Is ``host`` itself an API root, used as given (no ``/api/v3``)? github.com's
    ``api.github.com``, and GitHub Enterprise Cloud with data residency's
    ``api.SUBDOMAIN.ghe.com`` (its GraphQL at ``/graphql`` beside it)."""
    host = (host or "").lower().rstrip(".")
    return kind == "github" and (host == "api.github.com" or (
        host.startswith("api.") and host.endswith(".ghe.com")))


def open_forge(spec: ForgeSpec, env: Mapping[str, str] | None = None,
               options: Options | None = None) -> Forge:
    """The client of ``spec``'s kind. The token is read from ``env`` (default the
    process's environment) now, and a missing one is refused at the first call
    (``ForgeAuthError`` naming the variable), so building a client never fails for it."""
    env = os.environ if env is None else env
    if spec.kind == "github":
        # lazy: one kind's client (and httpx) loads only when that kind is asked for
        from coordination.forge.github import GitHub

        return GitHub(spec, env, options)
    if spec.kind == "gitlab":
        # lazy: one kind's client (and httpx) loads only when that kind is asked for
        from coordination.forge.gitlab import GitLab

        return GitLab(spec, env, options)
    if spec.kind == "gitea":
        # lazy: one kind's client (and httpx) loads only when that kind is asked for
        from coordination.forge.gitea import Gitea

        return Gitea(spec, env, options)
    raise ForgeConfigError(f"forge: kind {spec.kind!r} has no client here",
                           hint="the stub kind is made in code: coordination.forge.stub")


def forge_for(repo: RepoLike, env: Mapping[str, str] | None = None,
              options: Options | None = None) -> Forge:
    """The forge of ``repo`` (its ``forge:``): :class:`ForgeConfigError` when it has
    none, naming the repo and what to add."""
    fields = repo.forge
    if fields is None:
        raise ForgeConfigError(
            f"repo {repo.name!r} names no forge",
            hint="add forge: {kind: github|gitlab|gitea, project: owner/name} to the repo "
                 "in the catalog (coord init fills it for github.com and gitlab.com remotes)")
    return open_forge(spec_of(fields, repo=repo.name), env, options)
