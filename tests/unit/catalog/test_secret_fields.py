"""The catalog names secrets, never holds them (#78): a forge field naming a secret's
variable names neither one of coord's own nor a process basic, and a variable that
``mask_env:`` lists has no value in the catalog. Both refused with exit 2, the repo or
todo and the field named, the catalog unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.support.cli import clean_error, coord, write_yaml

pytestmark = pytest.mark.timeout(120)


def forge(**fields: str) -> dict[str, object]:
    return {"version": 1, "repos": [
        {"name": "app", "forge": {"kind": "github", "project": "acme/app", **fields}}]}


@pytest.mark.parametrize(("field", "name"), [
    ("token_env", "COORD_SIGNING_KEY"), ("token_env", "coord_audit_key"),
    ("webhook_secret_env", "COORD_SIGNING_KEY"), ("token_env", "PATH"),
    ("token_env", "HOME"), ("webhook_secret_env", "PYTHONPATH"), ("token_env", "LD_PRELOAD"),
])
def test_a_forge_secret_may_not_be_coords_own_or_a_process_basic(
        tmp_path: Path, field: str, name: str) -> None:
    eco = write_yaml(tmp_path, forge(**{field: name}))
    r = coord(eco, "repo", "list")
    clean_error(r, 2)
    assert f"repo app: forge: {field}: {name!r}" in r.stderr, r.stderr
    assert "name a variable of its own" in r.stderr


def test_a_forge_secrets_own_names_and_defaults_are_fine(tmp_path: Path) -> None:
    eco = write_yaml(tmp_path, forge(token_env="FORGE_TOKEN",
                                     webhook_secret_env="COORD_FORGE_WEBHOOK_SECRET"))
    r = coord(eco, "repo", "list")
    assert r.returncode == 0, r.stderr


def test_the_forge_spec_refuses_them_too() -> None:
    from types import SimpleNamespace

    from coordination.forge import spec_of
    from coordination.errors import ForgeConfigError

    fields = SimpleNamespace(kind="github", project="acme/app", api=None,
                             token_env="COORD_SIGNING_KEY", webhook_secret_env=None)
    with pytest.raises(ForgeConfigError, match="repo 'app': forge: token_env"):
        spec_of(fields, repo="app")  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["catalog", "repo", "todo"])
def test_a_masked_variable_has_no_value_in_the_catalog(tmp_path: Path, where: str) -> None:
    todo: dict[str, object] = {"id": "TODO-001", "task": "deploy", "repo": "api",
                               "run": "./deploy.sh", "env": {"DEPLOY_KEY": "hunter2-hunter2"}}
    repo: dict[str, object] = {"name": "api"}
    data: dict[str, object] = {"version": 1, "repos": [repo],
                               "coordination": {"todos": [todo]}}
    {"catalog": data, "repo": repo, "todo": todo}[where]["mask_env"] = ["DEPLOY_KEY"]
    eco = write_yaml(tmp_path, data)
    r = coord(eco, "todo", "list")
    clean_error(r, 2)
    assert "todo TODO-001: env: DEPLOY_KEY has a value" in r.stderr
    assert "through the worker's environment" in r.stderr
    assert "hunter2" not in r.stderr


def test_todo_create_env_of_a_masked_variable_is_refused_and_nothing_written(
        tmp_path: Path) -> None:
    eco = write_yaml(tmp_path, {"version": 1, "repos": [{"name": "api",
                                                         "mask_env": ["DEPLOY_KEY"]}]})
    before = eco.read_bytes()
    r = coord(eco, "todo", "create", "--repo", "api", "--task", "deploy", "--run", "true",
              "--env", "DEPLOY_KEY=hunter2-hunter2")
    clean_error(r, 2)
    assert "DEPLOY_KEY" in r.stderr and "hunter2" not in r.stderr
    assert eco.read_bytes() == before
    assert not (tmp_path / ".coord").exists() or "hunter2" not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / ".coord").rglob("*") if p.is_file())
    ok = coord(eco, "todo", "create", "--repo", "api", "--task", "deploy", "--run", "true",
               "--env", "REGION=eu-west-1")
    assert ok.returncode == 0, ok.stderr
