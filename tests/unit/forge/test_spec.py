"""A repo's forge: in the catalog (checked where it is written, with its line) and the spec
coord's clients are built from (every default filled in, checked again)."""

from __future__ import annotations

import pytest

from coordination.catalog.file.loader import load_catalog
from coordination.errors import CatalogError, ForgeConfigError
from coordination.forge import forge_for, spec_of
from coordination.forge.base import ForgeSpec

pytestmark = pytest.mark.timeout(30)

CATALOG = """\
version: 1
repos:
  - name: lib
    forge: {forge}
coordination:
  plans:
    - id: PLAN-001
      title: bump
      change: {{branch: bump, land: pr, merge_method: squash, draft: true}}
"""


def load(forge: str) -> object:
    return load_catalog(CATALOG.format(forge=forge).encode(), "ecosystem.yaml")


@pytest.mark.parametrize("forge, spec", [
    ("{kind: github, project: acme/lib}",
     ForgeSpec("github", "acme/lib", "https://api.github.com", "GITHUB_TOKEN")),
    ("{kind: gitlab, project: grp/sub/lib, api: 'https://gitlab.example.com/'}",
     ForgeSpec("gitlab", "grp/sub/lib", "https://gitlab.example.com/api/v4", "GITLAB_TOKEN")),
    ("{kind: gitea, project: acme/lib, api: 'https://codeberg.org/api/v1', token_env: CB,"
     " webhook_secret_env: CB_HOOK}",
     ForgeSpec("gitea", "acme/lib", "https://codeberg.org/api/v1", "CB", "CB_HOOK")),
    ("{kind: github, project: acme/lib, api: 'https://ghe.example.com'}",
     ForgeSpec("github", "acme/lib", "https://ghe.example.com/api/v3", "GITHUB_TOKEN")),
    ("{kind: github, project: acme/lib, api: 'http://127.0.0.1:8080'}",
     ForgeSpec("github", "acme/lib", "http://127.0.0.1:8080/api/v3", "GITHUB_TOKEN")),
    # GitHub Enterprise Cloud with data residency: its API root as given (#81)
    ("{kind: github, project: acme/lib, api: 'https://api.octo.ghe.com'}",
     ForgeSpec("github", "acme/lib", "https://api.octo.ghe.com", "GITHUB_TOKEN")),
    ("{kind: github, project: acme/lib, api: 'https://octo.ghe.com'}",
     ForgeSpec("github", "acme/lib", "https://octo.ghe.com/api/v3", "GITHUB_TOKEN")),
])
def test_the_spec_fills_the_defaults(forge: str, spec: ForgeSpec) -> None:
    catalog = load(forge)
    repo = catalog.repos[0]  # type: ignore[attr-defined]
    assert spec_of(repo.forge, repo="lib") == spec
    change = catalog.coordination.plans[0].change  # type: ignore[attr-defined]
    assert (change.land, change.merge_method, change.draft) == ("pr", "squash", True)


@pytest.mark.parametrize("forge, says", [
    ("{kind: bitbucket, project: acme/lib}", "forge.kind"),
    ("{kind: github, project: acme/lib/extra}", "not a github project"),
    ("{kind: gitea, project: acme}", "not a gitea project"),
    ("{kind: gitlab, project: grp}", "not a GitLab project path"),
    ("{kind: github, project: acme/lib.git}", ".git"),
    ("{kind: github, project: ../lib}", "not a github project"),
    ("{kind: gitlab, project: grp/lib, api: 'http://gitlab.example.com'}", "clear text"),
    ("{kind: gitlab, project: grp/lib, api: 'https://user:pw@gitlab.example.com'}", "no user"),
    ("{kind: gitlab, project: grp/lib, api: 'ftp://gitlab.example.com'}", "https://"),
    ("{kind: github, project: acme/lib, token_env: 'my token'}", "environment variable"),
    ("{kind: github, project: acme/lib, token: abc}", "token"),
])
def test_a_bad_forge_is_refused_where_it_is_written(forge: str, says: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load(forge)
    text = str(caught.value)
    assert says in text and "ecosystem.yaml:4" in text and "repos[0].forge" in text, text


def test_forge_for_a_repo_without_one_says_what_to_add() -> None:
    class Repo:
        name, forge = "lib", None

    with pytest.raises(ForgeConfigError, match="repo 'lib' names no forge") as caught:
        forge_for(Repo())  # type: ignore[arg-type]
    assert "forge: {kind:" in str(caught.value)


def test_forge_for_builds_the_kinds_client_without_reading_the_network() -> None:
    catalog = load("{kind: gitlab, project: grp/lib}")
    forge = forge_for(catalog.repos[0], {})  # type: ignore[attr-defined]
    assert (forge.kind, forge.project, type(forge).__name__) == ("gitlab", "grp/lib", "GitLab")


def test_a_ghe_com_api_root_has_its_graphql_beside_it() -> None:
    from coordination.forge.github import graphql_url

    assert graphql_url("https://api.octo.ghe.com") == "https://api.octo.ghe.com/graphql"
