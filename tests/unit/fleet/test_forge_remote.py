"""`coord init` writes a repo's forge: from its remote's URL when the host is one whose
forge is certain (github.com, gitlab.com), in https and ssh forms, and says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from coordination.fleet.discovery import Checkout
from coordination.fleet.drift import new_repo
from coordination.fleet.forge_remote import forge_of_remote
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("url", "forge"), [
    ("https://github.com/acme/api.git", {"kind": "github", "project": "acme/api"}),
    ("https://github.com/acme/api", {"kind": "github", "project": "acme/api"}),
    ("https://x-access-token:ghs_s3cret@github.com/acme/api.git",
     {"kind": "github", "project": "acme/api"}),
    ("git@github.com:acme/api.git", {"kind": "github", "project": "acme/api"}),
    ("ssh://git@github.com/acme/api.git", {"kind": "github", "project": "acme/api"}),
    ("https://gitlab.com/grp/sub/api.git", {"kind": "gitlab", "project": "grp/sub/api"}),
    ("git@gitlab.com:grp/api.git", {"kind": "gitlab", "project": "grp/api"}),
    ("ssh://git@GitLab.com:22/grp/sub/api", {"kind": "gitlab", "project": "grp/sub/api"}),
    ("https://gitea.example.com/acme/api.git", None),  # self-hosted: the user names it
    ("https://github.example.com/acme/api.git", None),
    ("https://github.com/acme", None),
    ("git@github.com:acme/api/more.git", None),
    ("/srv/git/api.git", None),
    ("ext::sh -c x", None),
    (None, None),
])
def test_the_forge_of_a_remote_url(url: str | None, forge: dict[str, str] | None) -> None:
    assert forge_of_remote(url) == forge
    c = Checkout(Path("/fleet/api"), default_branch="main", remote="origin", url=url)
    assert new_repo("api", c, Path("/fleet")).get("forge") == forge


def _checkout(root: Path, name: str, url: str | None) -> None:
    path = root / name
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root)}
    run = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True,  # noqa: E731
                                    capture_output=True, env=env)
    run("init", "--quiet", "--initial-branch=main")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty",
        "-m", "x")
    if url:
        run("remote", "add", "origin", url)


def test_init_writes_forge_from_the_remote_and_says_so(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    _checkout(fleet, "api", "git@github.com:acme/api.git")
    _checkout(fleet, "web", "https://gitlab.com/acme/frontend/web.git")
    _checkout(fleet, "tool", "https://git.example.com/acme/tool.git")
    catalog = fleet / "ecosystem.yaml"
    out = coord(catalog, "init", str(fleet))
    assert "forge github acme/api, from its remote's URL" in out.stdout
    assert "forge gitlab acme/frontend/web, from its remote's URL" in out.stdout
    repos = {r["name"]: r for r in yaml.safe_load(catalog.read_text())["repos"]}
    assert repos["api"]["forge"] == {"kind": "github", "project": "acme/api"}
    assert repos["web"]["forge"] == {"kind": "gitlab", "project": "acme/frontend/web"}
    assert "forge" not in repos["tool"]
    assert "forge: {kind: github, project: acme/api}" in catalog.read_text()
    assert coord(catalog, "init", "--check").returncode == 0
